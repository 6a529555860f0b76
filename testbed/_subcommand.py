"""Registering a ``testbed`` sub-command with its handler, and the flags commands share."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: lets a scenario name files outside its folder (`testbed.scenario` refuses them without it)
ALLOW_OUTSIDE_FLAG = "--allow-outside"


def add_command(sub: Any, name: str, func: Callable[[argparse.Namespace], int], *, help: str,
                description: str) -> argparse.ArgumentParser:
    """Add ``name`` to ``sub`` (what ``add_subparsers()`` returns) and return its parser;
    ``args.func`` is ``func``, which returns the exit status."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=description)
    p.set_defaults(func=func)
    return p


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_allow_outside_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(ALLOW_OUTSIDE_FLAG, type=Path, action="append", metavar="PATH",
                   help="let the scenario name files under PATH (a file or folder outside the "
                   "scenario's folder: build profiles, data files, images, installers; "
                   "repeatable). Without it such references are refused.")
