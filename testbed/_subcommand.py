"""Registering a ``testbed`` sub-command with its handler, and the flags commands share."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: where a run directory is (``testbed.run.files`` owns its layout)
RUN_PATH = "results/<scenario>/<run-id>"
#: lets a scenario name files outside its folder (`testbed.scenario` refuses them without it)
ALLOW_OUTSIDE_FLAG = "--allow-outside"


def add_command(sub: Any, name: str, func: Callable[[argparse.Namespace], int], *, help: str,
                description: str | None = None) -> argparse.ArgumentParser:
    """Add ``name`` to ``sub`` (what ``add_subparsers()`` returns) and return its parser;
    ``args.func`` is ``func``, which returns the exit status. Without ``description``, the
    command's description is the first paragraph of ``func``'s docstring (the rest is for
    developers)."""
    if description is None:
        description = (inspect.getdoc(func) or "").split("\n\n")[0]
    p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=description)
    p.set_defaults(func=func)
    return p


def add_group(sub: Any, name: str, *, help: str, description: str | None = None) -> Any:
    """Add ``name``, a command whose commands follow it (``testbed NAME COMMAND``), to ``sub``;
    return the object to add those to (``args.NAME_command`` names the one given)."""
    group: argparse.ArgumentParser = sub.add_parser(name, help=help, description=description)
    return group.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def add_run_argument(p: argparse.ArgumentParser, name: str = "run",
                     help: str = f"a run directory: {RUN_PATH}") -> None:
    """The positional argument naming a run directory (``args.<name>``, a Path)."""
    p.add_argument(name, type=Path, metavar=name.upper(), help=help)


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_allow_outside_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(ALLOW_OUTSIDE_FLAG, type=Path, action="append", metavar="PATH",
                   help="let the scenario name files under PATH (a file or folder outside the "
                   "scenario's folder: build profiles, data files, images, installers; "
                   "repeatable). Without it such references are refused.")
