"""The ``route:`` of a scenario and of a client (docs/routes.md): checked with ``FILE:LINE``
problems, then built into `testbed.scenario.model.Route`.

    route: simulated                      # the lab's internet (default)
    route: drop                           # nothing leaves
    route: {vpn: {config: exits/cn.conf, resolver: 10.99.0.1, echo: http://…/ip}}
    route: {vpn: {config: cn.conf, uplink: eth1}}   # the tunnel itself out of a host uplink
    route: {internet: {uplink: eth1, resolver: 192.0.2.53, gateway: 192.0.2.1, echo: …}}

A VPN config may live outside the scenario's folder (keys are often kept apart); its problems
are reported with its own file and line and never quote a key.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from testbed.scenario._problem import KeyPath, Problem
from testbed.scenario.model import ROUTE_KINDS, Route, RouteKind

if TYPE_CHECKING:
    from testbed.scenario._build import Doc

Add = Callable[[Problem], None]
PLAIN = ("simulated", "drop")
KEYS: dict[str, dict[str, bool]] = {  # kind -> its keys, and whether each is required
    "vpn": {"config": True, "resolver": False, "echo": False, "uplink": False, "gateway": False},
    "internet": {"uplink": True, "resolver": True, "gateway": False, "echo": False},
}
IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
EXPECTED = ("expected simulated, drop, {vpn: {config: FILE}} or "
            "{internet: {uplink: INTERFACE, resolver: ADDRESS}}")


def check_route(doc: Doc, at: KeyPath, value: Any, add: Add) -> None:
    """Every problem of one ``route:`` value."""
    if isinstance(value, str):
        if value not in PLAIN:
            hint = f" (a {value} route needs its settings)" if value in KEYS else ""
            add(doc.at(at, f"unknown route {value!r}{hint}: {EXPECTED}"))
        return
    if not isinstance(value, dict) or len(value) != 1:
        add(doc.at(at, EXPECTED))
        return
    kind, spec = next(iter(value.items()))
    if kind not in KEYS:
        add(doc.at(at, f"unknown route {kind!r}: {EXPECTED}"))
        return
    here = (*at, kind)
    if not isinstance(spec, dict):
        add(doc.at(here, f"expected a mapping of {', '.join(KEYS[kind])}"))
        return
    for key in spec:
        if key not in KEYS[kind]:
            add(doc.at((*here, key), f"unknown key {key!r} of a {kind} route (expected "
                       f"{', '.join(KEYS[kind])})"))
    for key, required in KEYS[kind].items():
        if required and key not in spec:
            add(doc.at(here, f"a {kind} route needs {key!r}"))
        elif key in spec and (not isinstance(spec[key], str) or not spec[key]):
            add(doc.at((*here, key), f"{key} should be a non-empty string"))
    for key in ("resolver", "gateway"):
        value = spec.get(key)
        if isinstance(value, str) and value:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                add(doc.at((*here, key), f"{key} {value!r} is not an IP address"))
    echo = spec.get("echo")
    if isinstance(echo, str) and echo and not re.match(r"^https?://[^/\s]+", echo):
        add(doc.at((*here, "echo"), f"echo {echo!r} is not an http(s) URL"))
    uplink = spec.get("uplink")
    if isinstance(uplink, str) and uplink and not IFNAME.match(uplink):
        add(doc.at((*here, "uplink"), f"uplink {uplink!r} is not an interface name"))
    config = spec.get("config")
    if kind == "vpn" and isinstance(config, str) and config:
        _check_config(doc, (*here, "config"), config, add)


def _check_config(doc: Doc, at: KeyPath, value: str, add: Add) -> None:
    from testbed.route.wireguard import read_config

    path = config_path(Path(doc.file).parent, value)
    if path.suffix == ".ovpn":
        add(doc.at(at, f"{value}: OpenVPN configs are not supported yet; use a WireGuard "
                   "config (.conf)"))
        return
    if not path.is_file():
        add(doc.at(at, f"file not found: {path}"))
        return
    for line in read_config(path, shown=str(path)).problems:
        where, _, message = line.partition(": ")
        file, _, n = where.rpartition(":")
        if n.isdigit():
            add(Problem(file, int(n), "", message))
        else:
            add(Problem(where, None, "", message))


def config_path(folder: Path, value: str) -> Path:
    """A VPN config named by a scenario: relative to its folder, or absolute."""
    return (folder / value).resolve()


def build_route(value: Any, folder: Path, line: int) -> Route:
    """A checked ``route:`` value as a Route."""
    if isinstance(value, str):
        return Route(kind=cast(RouteKind, value), line=line)
    kind, spec = next(iter(value.items()))
    assert kind in ROUTE_KINDS
    return Route(kind=cast(RouteKind, kind),
                 config=config_path(folder, spec["config"]) if "config" in spec else None,
                 uplink=str(spec.get("uplink", "")), resolver=str(spec.get("resolver", "")),
                 gateway=str(spec.get("gateway", "")),
                 echo=str(spec.get("echo", "")), line=line)
