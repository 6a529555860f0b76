"""Checks of the lab's data files beyond their schemas (`testbed.scenario.data_schema`):
internet data files (addresses in the lab's documentation blocks, unique addresses and names,
TLS files in the tree) and build profiles (pinned certificates in the tree)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from testbed.scenario import daemon_files
from testbed.scenario._build import Doc
from testbed.scenario._checks import outside_message, plain_placeholders, within
from testbed.scenario._problem import KeyPath, Problem
from testbed.scenario.data_schema import DAEMON_PLACEHOLDERS, LAB_BLOCKS

Add = Callable[[Problem], None]


def check_file_ref(doc: Doc, at: KeyPath, value: Any, roots: Sequence[Path], add: Add,
                   base: Path | None = None) -> Path | None:
    """A file named by ``doc`` (relative to ``base``, default its folder): inside ``roots``
    and a regular file. Returns its path when both hold."""
    if not isinstance(value, str) or not value:
        return None
    target = (base or Path(doc.file).parent) / value
    if not within(target, roots):
        add(doc.at(at, outside_message(value, roots[0])))
        return None
    if not target.is_file():
        add(doc.at(at, f"file not found: {target}"))
        return None
    return target


def _ip(doc: Doc, at: KeyPath, value: Any, add: Add) -> ipaddress.IPv4Address |\
        ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        add(doc.at(at, f"not an IP address: {value!r}"))
        return None


def check_internet(doc: Doc, roots: Sequence[Path], add: Add, files: bool = True) -> None:
    """``files``: also check the files it names (not on a run's copy, which has none)."""
    data = doc.data
    servers = data.get("servers")
    addresses: dict[str, int] = {}
    names: dict[str, int] = {}
    for i, row in enumerate(servers if isinstance(servers, list) else []):
        if not isinstance(row, dict):
            continue
        addr = _ip(doc, ("servers", i, "address"), row.get("address"), add)
        if addr is not None:
            line = doc.yaml.line(("servers", i))
            if not any(addr in block for block in LAB_BLOCKS):
                add(doc.at(("servers", i, "address"),
                           f"{addr} is not in a documentation block (192.0.2.0/24, "
                           "198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32); the lab never "
                           "answers on real public addresses"))
            elif str(addr) in addresses:
                add(doc.at(("servers", i, "address"), f"duplicate address {addr} (first at "
                           f"line {addresses[str(addr)]})"))
            else:
                addresses[str(addr)] = line
        if "stands_for" in row:
            _ip(doc, ("servers", i, "stands_for"), row.get("stands_for"), add)
        if isinstance(row.get("daemon"), dict):
            _check_daemon(doc, ("servers", i, "daemon"), row["daemon"], roots, add, files)
        if isinstance(row.get("exit"), dict) and "daemon" in row:
            add(doc.at(("servers", i, "exit"), "a row is a VPN exit or runs a daemon, not both"))
        elif isinstance(row.get("exit"), dict) and files:
            check_file_ref(doc, ("servers", i, "exit", "wireguard"), row["exit"].get("wireguard"),
                           roots, add)
        name = row.get("name")
        if isinstance(name, str):
            key = name.lower().rstrip(".")
            if key in names:
                add(doc.at(("servers", i, "name"),
                           f"duplicate name {name!r} (first at line {names[key]})"))
            else:
                names[key] = doc.yaml.line(("servers", i))
    special = data.get("special")
    for i, row in enumerate(special if isinstance(special, list) else []):
        if isinstance(row, dict):
            _ip(doc, ("special", i, "address"), row.get("address"), add)
    tls = data.get("tls")
    if isinstance(tls, dict) and files:
        for key in ("cert", "key"):
            check_file_ref(doc, ("tls", key), tls.get(key), roots, add)


def _known(name: str) -> str | None:
    if name in DAEMON_PLACEHOLDERS:
        return None
    return (f"unknown placeholder {{{name}}} (a daemon's may be "
            + ", ".join(f"{{{k}}}" for k in DAEMON_PLACEHOLDERS) + ")")


def _check_daemon(doc: Doc, at: KeyPath, daemon: dict[str, Any], roots: Sequence[Path],
                  add: Add, files: bool) -> None:
    """Its command's placeholders; its files: in the tree, one base name each, readable
    text whose placeholders are known."""
    command = daemon.get("command")
    for j, arg in enumerate(command if isinstance(command, list) else []):
        if not isinstance(arg, str):
            continue
        try:
            names = plain_placeholders(arg)
        except ValueError as e:
            add(doc.at((*at, "command", j), str(e)))
            continue
        for name in names:
            if (problem := _known(name)) is not None:
                add(doc.at((*at, "command", j), problem))
    listed = daemon.get("files")
    seen: dict[str, int] = {}
    for j, value in enumerate(listed if isinstance(listed, list) else []):
        if not isinstance(value, str):
            continue
        base = Path(value).name
        if base in seen:
            add(doc.at((*at, "files", j), f"two files named {base!r} (entries {seen[base]} "
                       f"and {j}): each is rendered into {{config}} under its own name"))
        seen.setdefault(base, j)
        target = check_file_ref(doc, (*at, "files", j), value, roots, add) if files else None
        if target is None:
            continue
        try:
            text = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            add(doc.at((*at, "files", j), f"{value}: not a readable UTF-8 text file ({e})"))
            continue
        for line, name in daemon_files.placeholders(text):
            if (problem := _known(name)) is not None:
                add(doc.at((*at, "files", j), f"{value} line {line}: {problem}; write "
                           f"{{{{{name}}}}} for a literal {{{name}}}"))


def check_build(doc: Doc, roots: Sequence[Path], add: Add, files: bool = True) -> None:
    pins = doc.data.get("pin") if files else None
    for host, cert in pins.items() if isinstance(pins, dict) else ():
        check_file_ref(doc, ("pin", host), cert, roots, add)
