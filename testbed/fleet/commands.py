"""The fleet's subcommands: ``testbed worker``, ``testbed submit``, ``testbed jobs``; and the
``--distributed`` flag's options for ``testbed nightly``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from testbed._subcommand import add_command, add_json_flag
from testbed.fleet.engine import DEFAULT_BROKER, DEFAULT_VISIBILITY
from testbed.run.files import DEFAULT_RESULTS

DEFAULT_SCENARIOS = Path("scenarios")


def add_broker(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", default=DEFAULT_BROKER, metavar="URL",
                   help="the Redis broker (default: %(default)s, or $TESTBED_BROKER)")


def add_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenarios-root", type=Path, default=DEFAULT_SCENARIOS, metavar="DIR",
                   help="the scenarios folder every host shares (a checkout's scenarios/); "
                   "jobs name scenarios relative to it (default: %(default)s)")


def _results(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, metavar="DIR",
                   help=f"{what} (default: %(default)s)")


def run_worker(args: argparse.Namespace) -> int:
    from testbed.fleet.worker import main

    return main(args)


def run_submit(args: argparse.Namespace) -> int:
    from testbed.fleet.submit import main

    return main(args)


def run_jobs(args: argparse.Namespace) -> int:
    from testbed.fleet.status import main

    return main(args)


def add_parser(sub: Any) -> None:
    w = add_command(sub, "worker", run_worker, help="take runs from the fleet's queue (one "
                    "per lab host)", description="Advertise what this host can run "
                    "(providers passing pre-flight, vagrant boxes, routes and exit countries "
                    "from --config, cores, memory), then run the jobs sent to it and send "
                    "each run back as a checksummed bundle. On start, sweeps what a killed "
                    "earlier worker on this results folder left.")
    add_broker(w)
    _results(w, "where this worker's runs are made")
    add_root(w)
    w.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="worker config (YAML: name, routes, exits, providers, concurrency)")
    w.add_argument("--name", default=None, help="worker name (default: config, else host)")
    w.add_argument("--concurrency", type=int, default=None, metavar="N",
                   help="jobs at once (default: config, else 1)")
    w.add_argument("--heartbeat", type=float, default=5.0, metavar="SECONDS",
                   help="lease renewal period; a job whose worker misses three is re-sent "
                   "(default: %(default)s)")
    w.add_argument("--recheck", type=float, default=60.0, metavar="SECONDS",
                   help="re-run the pre-flight this often (default: %(default)s)")
    w.add_argument("--visibility", type=float, default=DEFAULT_VISIBILITY, metavar="SECONDS",
                   help="the broker's visibility timeout (default: %(default)s)")
    w.add_argument("--runner", default=None, metavar="MODULE:FUNCTION",
                   help=argparse.SUPPRESS)  # tests' and benchmarks' run function

    s = add_command(sub, "submit", run_submit, help="submit a scenario or a matrix to the "
                    "fleet", description="Submit one scenario, or a matrix file (scenarios x "
                    "builds x vantages, with constraints), to the workers. A job no live "
                    "worker can run is refused with each worker's reason, and then nothing is "
                    "submitted. With --wait, follow the jobs and bring every run into "
                    "--results and its history.")
    s.add_argument("file", type=Path, metavar="FILE", help="a scenario or a matrix file")
    add_broker(s)
    add_root(s)
    _results(s, "the coordinator's results folder (with --wait)")
    for name in ("provider", "route", "exit"):
        s.add_argument(f"--{name}", default=None, help=f"constraint: {name} for every job")
    s.add_argument("--max-attempts", type=int, default=3, metavar="N",
                   help="times a job is tried when its worker dies (default: %(default)s)")
    s.add_argument("--wait", action="store_true", help="wait for every job and index it")
    s.add_argument("--timeout", type=float, default=6 * 3600, metavar="SECONDS",
                   help="give up waiting after this long (default: %(default)s)")

    j = add_command(sub, "jobs", run_jobs, help="the fleet's jobs and workers",
                    description="Bring finished runs into --results and its history, re-send "
                    "jobs of dead workers, then list queued, running (where, since when, "
                    "which phase), done and failed jobs, and the live workers.")
    add_broker(j)
    _results(j, "the coordinator's results folder")
    j.add_argument("--index", type=Path, default=None, metavar="FILE",
                   help="the history index (default: RESULTS/history.sqlite)")
    add_json_flag(j)


def add_nightly_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--distributed", action="store_true",
                   help="run the scenarios on the fleet's workers (testbed worker) at once")
    add_broker(p)
    add_root(p)
