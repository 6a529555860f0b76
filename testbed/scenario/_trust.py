"""Checks of what a scenario says about its clients' homes and trust: a starting profile is a
folder inside the scenario's tree; an app that brings its own trust store (``trust: own``) is
either left unopened (``tls: passthrough``) or expected ``untrusted``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from testbed.scenario._build import Doc
from testbed.scenario._checks import outside_message, within
from testbed.scenario._problem import Problem
from testbed.scenario.schema import OWN_TRUST

Add = Callable[[Problem], None]


def check_start_profile(doc: Doc, variant: Any, value: Any, roots: Sequence[Path],
                        add: Add) -> None:
    """``clients.<variant>.profile``: a folder inside the scenario's tree."""
    if not isinstance(value, str) or not value:
        return
    at = ("clients", variant, "profile")
    if doc.data.get("provider") == "vagrant":
        add(doc.at(at, "a starting profile is copied into lab guests only (provider: lab); "
                       "on VMs, put it into the box before its clean snapshot"))
        return
    target = Path(doc.file).parent / value
    if not within(target, roots):
        add(doc.at(at, outside_message(value, roots[0])))
    elif not target.exists():
        add(doc.at(at, f"profile folder not found: {target}"))
    elif not target.is_dir():
        add(doc.at(at, f"profile {value!r} is not a folder (a starting profile is a folder "
                       f"copied into the guest's home)"))


def check_own_trust(doc: Doc, clients: dict[Any, Any], profiles: dict[Any, Doc | None],
                    add: Add) -> None:
    """A client whose app reads no store we can fill must be passed through or expected
    ``untrusted``: otherwise its failed connections would read as findings."""
    expected = {e.get("variant") for e in doc.data.get("expectations") or []
                if isinstance(e, dict) and e.get("tls") == "untrusted"}
    for variant, pdoc in profiles.items():
        client = clients.get(variant)
        if pdoc is None or not isinstance(client, dict):
            continue
        if pdoc.data.get("trust") != OWN_TRUST:
            continue
        if client.get("tls") == "passthrough" or variant in expected:
            continue
        app = pdoc.data.get("app")
        add(doc.at(("clients", variant, "app"),
                   f"app {app!r} brings its own trust store (trust: own): the gateway's CA "
                   f"cannot reach it, so say `tls: passthrough` for {variant} or expect "
                   f"`tls: untrusted` of it"))
