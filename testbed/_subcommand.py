"""Registering a ``testbed`` sub-command with its handler, and the flags commands share."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_command(sub: Any, name: str, func: Callable[[argparse.Namespace], int], *, help: str,
                description: str) -> argparse.ArgumentParser:
    """Add ``name`` to ``sub`` (what ``add_subparsers()`` returns) and return its parser;
    ``args.func`` is ``func``, which returns the exit status."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=description)
    p.set_defaults(func=func)
    return p


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
