"""The history subcommands for the ``testbed`` CLI: ``diff``, ``history``, ``nightly`` and
``schedule install|remove``.

    add_parser(sub)              all four, on an argparse subparsers object
    add_diff_parser(sub) / add_history_parser(sub) / add_nightly_parser(sub) /
    add_schedule_parser(sub)     one each; every parser sets ``func`` to a run_*(args) -> int,
                                 whose docstring's first paragraph is the command's description

Errors are ``TestbedError`` subclasses with one-line messages (bad input: exit 2).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testbed._subcommand import RUN_PATH, add_command, add_group, add_json_flag, add_run_argument
from testbed.history.errors import BadInput
from testbed.run.files import DEFAULT_RESULTS

if TYPE_CHECKING:  # (the handlers import them: the parser is built for every command)
    from testbed.history.index import History, RunRecord


def _index(args: argparse.Namespace) -> History:
    from testbed.history.index import History, default_index

    return History(args.index or default_index(args.results))


def _add_store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="DIR",
                   help="the results folder (default: %(default)s, or $TESTBED_RESULTS)")
    p.add_argument("--index", type=Path, default=None, metavar="FILE",
                   help="the history index (default: RESULTS/history.sqlite)")


# -- diff ----------------------------------------------------------------------------------
def run_diff(args: argparse.Namespace) -> int:
    """Compare two runs of a scenario: per variant, the endpoints, countries, organisations
    and ASNs that appeared or disappeared, and every verdict whose status changed (with both
    reasons). Special-purpose addresses count as endpoints, never as countries. Exit 0 when
    nothing changed, 1 when something did, 2 for bad input.

    Bad input is raised (BadInput)."""
    from testbed.history.diff import diff_runs, format_diff

    d = diff_runs(args.run_a, args.run_b)
    if args.json:
        print(json.dumps(d.to_json(), indent=2))
    else:
        print(format_diff(d))
    return 1 if d.changed else 0


def add_diff_parser(sub: Any) -> argparse.ArgumentParser:
    p = add_command(
        sub, "diff", run_diff, help="what changed between two runs")
    add_run_argument(p, "run_a", help=f"the older run (the baseline): {RUN_PATH}")
    add_run_argument(p, "run_b", help="the newer run")
    add_json_flag(p)
    return p


# -- history -------------------------------------------------------------------------------
def _date(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%MZ")


def _countries(rec: RunRecord) -> str:
    return "; ".join(f"{v}: {' '.join(cs) or '-'}" for v, cs in rec.countries.items()) or "-"


def _notes(rec: RunRecord) -> str:
    if not rec.nightly:
        return ""
    head = ("REGRESSION" if rec.regression else "no regression") + (
        f" vs {rec.baseline}" if rec.baseline else " (no baseline)")
    return "; ".join([head, *rec.notes])


def format_history(records: list[RunRecord]) -> str:
    """The history table, newest first."""
    rows = [("date", "run id", "status", "P/F/I", "good", "countries per variant", "nightly")]
    for r in records:
        c = r.counts
        rows.append((_date(r.started), r.run_id, r.status,
                     f"{c['pass']}/{c['fail']}/{c['inconclusive']}", "yes" if r.good else "no",
                     _countries(r), _notes(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        ("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True))
         + "  " + row[-1]).rstrip() for row in rows)


def run_history(args: argparse.Namespace) -> int:
    """List the runs of a scenario from the history index (RESULTS/history.sqlite): date, run
    id, status, pass/fail/inconclusive counts, countries reached per variant, and for nightly
    runs the regression outcome. Runs not yet in the index are added first."""
    if args.limit is not None and args.limit < 1:
        raise BadInput(f"--limit {args.limit}: expected a positive number")
    index = _index(args)

    def damaged(message: str) -> None:
        print(f"testbed: warning: {message} (run not indexed)", file=sys.stderr)

    if args.reindex:
        index.reindex(args.results, damaged)
    else:
        index.sync(args.results, damaged)  # runs made since (testbed run) appear at once
    records = index.runs(args.scenario, args.limit)
    if not records:
        known = index.scenarios()
        raise BadInput(f"no runs of {args.scenario!r} in {index.path}"
                       + (f" (scenarios with runs: {', '.join(known)})" if known else ""))
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=2))
    else:
        print(format_history(records))
    return 0


def add_history_parser(sub: Any) -> argparse.ArgumentParser:
    p = add_command(
        sub, "history", run_history, help="the runs of a scenario, newest first")
    p.add_argument("scenario", metavar="SCENARIO", help="scenario name, e.g. skype-2013-lab")
    add_json_flag(p)
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the N newest")
    p.add_argument("--reindex", action="store_true",
                   help="rebuild the index from every run directory under RESULTS first")
    _add_store_options(p)
    return p


# -- nightly -------------------------------------------------------------------------------
def run_nightly(args: argparse.Namespace) -> int:
    """Run every scenario marked 'nightly: true' under --scenarios, compare each new run with
    the scenario's last good run (complete, every verdict passing), print what changed and
    record it in the history index. Exit 1 on a regression (a verdict that passed and no
    longer does, or a run that failed or was interrupted) or a failing verdict; new endpoints
    and countries are always printed."""
    from testbed.history.nightly import nightly

    if getattr(args, "distributed", False):  # on the fleet's workers (testbed.fleet)
        from testbed.fleet.nightly import run_distributed

        rep = run_distributed(args.scenarios, args.results, args.broker, args.scenarios_root,
                              history=_index(args))
        return rep.exit_code
    rep = nightly(args.scenarios, args.results, history=_index(args))
    return rep.exit_code


def add_nightly_parser(sub: Any) -> argparse.ArgumentParser:
    p = add_command(
        sub, "nightly", run_nightly,
        help="run every nightly scenario and compare with its last good run")
    p.add_argument("--scenarios", type=Path, default=Path("scenarios"), metavar="DIR",
                   help="where to look for scenarios (default: %(default)s)")
    _add_store_options(p)
    from testbed.fleet.commands import add_nightly_options

    add_nightly_options(p)
    return p


# -- schedule ------------------------------------------------------------------------------
def run_schedule_install(args: argparse.Namespace) -> int:
    """Write testbed-nightly.service and testbed-nightly.timer into --unit-dir and enable the
    timer (systemctl daemon-reload; systemctl enable --now) unless --no-enable is given or
    systemd is not running. Always prints the equivalent crontab line for machines without
    systemd."""
    from testbed.history.schedule import install

    res = install(args.at, unit_dir=args.unit_dir, enable=not args.no_enable,
                  repo=args.repo, via=args.via)
    print("\n".join(res.messages))
    return 0


def run_schedule_remove(args: argparse.Namespace) -> int:
    """Disable the timer (systemctl disable --now) and delete both unit files from
    --unit-dir."""
    from testbed.history.schedule import remove

    res = remove(unit_dir=args.unit_dir, disable=not args.no_disable)
    print("\n".join(res.messages))
    return 0


def add_schedule_parser(sub: Any) -> None:
    from testbed.history.schedule import DEFAULT_UNIT_DIR, REPO

    ss = add_group(
        sub, "schedule", help="run 'testbed nightly' every day (systemd timer or cron)",
        description="Install or remove a systemd timer that runs the nightly regression runs.")
    i = add_command(
        ss, "install", run_schedule_install,
        help="write and enable testbed-nightly.service and .timer")
    i.add_argument("--at", default="02:00", metavar="HH:MM",
                   help="time of day, 24-hour clock, local time (default: %(default)s)")
    i.add_argument("--unit-dir", type=Path, default=DEFAULT_UNIT_DIR, metavar="DIR",
                   help="where to write the units (default: %(default)s)")
    i.add_argument("--no-enable", action="store_true",
                   help="only write the files; do not call systemctl")
    i.add_argument("--repo", type=Path, default=REPO, metavar="DIR",
                   help="the repository the service runs in (default: %(default)s)")
    i.add_argument("--via", choices=["auto", "make", "testbed"], default="auto",
                   help="run 'make nightly' (sets up first) or '.venv/bin/testbed nightly' "
                   "(default: make when available)")
    r = add_command(ss, "remove", run_schedule_remove,
                    help="disable and delete the nightly timer")
    r.add_argument("--unit-dir", type=Path, default=DEFAULT_UNIT_DIR, metavar="DIR",
                   help="where the units are (default: %(default)s)")
    r.add_argument("--no-disable", action="store_true",
                   help="only delete the files; do not call systemctl")


def add_parser(sub: Any) -> None:
    """Add ``diff``, ``history``, ``nightly`` and ``schedule`` to ``sub`` (the object that
    ``ArgumentParser.add_subparsers()`` returns)."""
    add_diff_parser(sub)
    add_history_parser(sub)
    add_nightly_parser(sub)
    add_schedule_parser(sub)
