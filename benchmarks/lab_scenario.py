#!/usr/bin/env python3
"""A lab scenario with N guests, for the lab-run benchmark (``bench_lab_run.py``).

Guests cycle through the seed's builds (regular, tom-en, regular, tom-zh); every guest
launches, signs in and opens About at the same time as the others; then guest 2k sends a
neutral message to guest 2k+1, every pair at once. One reach expectation per guest.

    .venv/bin/python benchmarks/lab_scenario.py N OUT_FOLDER    # prints the scenario's path

The scenario is written into OUT_FOLDER beside copies of the repository's ``apps`` and ``lab``
folders, which it names relative to itself (a scenario's references stay inside its folder).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILDS = [("regular", "refclient"), ("tom-en", "refclient"), ("regular", "refclient"),
          ("tom-zh", "refclient-zh")]


def scenario(n: int) -> dict[str, object]:
    names = [f"g{i}" for i in range(n)]
    clients = {}
    for i, name in enumerate(names):
        build, app = BUILDS[i % len(BUILDS)]
        clients[name] = {"app": app, "build": f"lab/builds/{build}.yaml",
                         "account": {"user": f"user{i}"}}

    def everyone(action: str) -> dict[str, object]:
        return {"name": action, "parallel": True,
                "steps": [{"variant": v, "action": action} for v in names]}

    chat: list[dict[str, str]] = []
    for a, b in zip(names[0::2], names[1::2], strict=False):
        chat += [{"variant": a, "action": "chat_send", "to": b,
                  "text": "see you at lunch tomorrow"},
                 {"variant": b, "action": "chat_wait", "from": a}]
    expectations = [{"variant": v, ("reaches" if BUILDS[i % 4][0].startswith("tom")
                                    else "never_reaches"): {"country": "CN"}}
                    for i, v in enumerate(names)]
    return {"scenario": f"lab-bench-{n}", "version": 1,
            "description": f"{n} lab guests at once (benchmarks/lab_scenario.py)",
            "provider": "lab", "lab": {"internet": "lab/internet-2013.yaml"},
            "clients": clients,
            "sessions": [everyone("launch"), everyone("login"), everyone("about"),
                         {"name": "chat", "parallel": True, "steps": chat}],
            "expectations": expectations}


def write(n: int, folder: Path, root: Path = ROOT) -> Path:
    """The scenario in ``folder``, using the app profiles and lab files of checkout ``root``."""
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("apps", "lab"):
        if not (folder / sub).exists():
            shutil.copytree(root / "scenarios" / sub, folder / sub, symlinks=True)
    path = folder / f"lab-bench-{n}.yaml"
    path.write_text(yaml.safe_dump(scenario(n), sort_keys=False, allow_unicode=True))
    return path


if __name__ == "__main__":
    print(write(int(sys.argv[1]), Path(sys.argv[2])))
