"""``testbed doctor [--scenario FILE]``: for each provider, what this machine has and lacks,
with the command that fixes each missing thing."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when the doctor runs: every other command starts faster
    from testbed.vagrant.preflight import Check


def lab_checks() -> list[Check]:
    from testbed.lab.provider import TOOLS
    from testbed.vagrant.preflight import Check

    checks = [Check("root (network namespaces, tcpdump)", os.geteuid() == 0, "",
                    "run as root")]
    for tool, package in TOOLS.items():
        path = shutil.which(tool)
        checks.append(Check(tool, path is not None, path or "not found",
                            f"apt-get install {package} (or: make setup)"))
    try:
        import tkinter  # noqa: F401

        tk = True
    except ImportError:
        tk = False
    checks.append(Check("tkinter (the reference client)", tk, "",
                        "apt-get install python3-tk"))
    return checks


def report(scenario: Path | None = None) -> tuple[str, bool]:
    """The doctor's text, and whether every provider section is complete."""
    from testbed.vagrant.preflight import box_checks, scenario_checks, vagrant_checks

    sections = [("provider lab (embedded lab)", lab_checks()),
                ("provider vagrant (real VMs)", vagrant_checks() + box_checks())]
    if scenario is not None:
        from testbed.route.checks import route_checks
        from testbed.scenario import load_scenario

        loaded = load_scenario(scenario)
        sections.append((f"scenario {scenario}", scenario_checks(loaded)))
        routes = route_checks(loaded)
        if routes:
            sections.append((f"routes of {scenario}", routes))
    lines, all_ok = [], True
    for title, checks in sections:
        ok = all(c.ok for c in checks)
        all_ok &= ok
        lines.append(f"{title}: {'ready' if ok else 'not ready'}")
        lines += [c.line() for c in checks]
    return "\n".join(lines), all_ok


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser("doctor", help="what this machine has and lacks, per provider",
                       description="For each provider (lab, vagrant): what is present and what "
                       "is missing, with the command that fixes each. With --scenario: also "
                       "that scenario's boxes, installers and reference images.")
    d.add_argument("--scenario", type=Path, help="also check what this scenario needs")
    d.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    text, ok = report(args.scenario)
    print(text)
    return 0 if ok else 1
