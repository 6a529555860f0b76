"""``testbed report RUN [--open]``: (re)write a run's ``report.html``.

The CLI wires it with ``commands.add_parser(sub)``; the parser's ``func`` is :func:`run`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from testbed._errors import TestbedError
from testbed._subcommand import add_command, add_run_argument
from testbed.run import files


class NotARun(TestbedError):
    """The folder given is not a run directory: a user mistake (exit 2)."""

    exit_code = 2


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to ``sub`` (an ``add_subparsers()`` object) and return
    its parser; ``args.func`` is set to :func:`run`."""
    p = add_command(
        sub, "report", run, help="write a run's self-contained report.html",
        description="Write RUN/report.html: verdicts with their evidence, the endpoint table, "
        "screenshots of every phase side by side, chat paths, capture and TLS notes, GeoIP "
        "provenance and tool versions, in one file that needs no network. A crashed run gets "
        "a report too, saying what is missing.")
    add_run_argument(p)
    p.add_argument("--open", action="store_true",
                   help="open the report in the desktop's web browser afterwards")
    return p


def run(args: argparse.Namespace) -> int:
    """CLI glue: ``args.run``, ``args.open``. Prints the report's path; exit 0.

    Raises :class:`NotARun` (exit 2) when RUN is not a run directory (no manifest): nothing
    is written there; :class:`testbed._errors.TestbedError` (exit 1) when the report cannot be
    written. A damaged file of the run is named on the page and in one warning line on stderr;
    the report is still written."""
    from .data import load_run
    from .render import build_report

    if not args.run.is_dir():
        raise NotARun(f"{args.run}: not a run directory (no such folder); no report written")
    if not files.is_run(args.run):
        raise NotARun(f"{args.run}: not a run directory (no {files.MANIFEST}); no report "
                      "written")
    data = load_run(args.run)
    out = build_report(args.run, data)
    for rel, problem in data.problems.items():
        if problem not in ("missing", "empty"):  # a damaged file: the page says so too
            print(f"testbed: warning: {args.run / rel}: {problem}", file=sys.stderr)
    print(f"report: {out}")
    if getattr(args, "open", False) and not _open(out):
        print("testbed: no web browser found; open the file above by hand")
    return 0


def _open(page: Path) -> bool:
    import webbrowser  # only for --open

    return webbrowser.open(page.resolve().as_uri())
