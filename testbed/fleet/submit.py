"""``testbed submit``: a scenario or a matrix onto the fleet. Every job is checked against the
live workers first; if any job fits none, nothing is submitted and each such job is named
with every worker's reason. ``--wait`` then follows the jobs to the end, bringing each
finished run into the results folder and its history as it arrives."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from testbed.fleet.capabilities import refusal
from testbed.fleet.engine import FleetError, FleetInputError, celery_app, connect
from testbed.fleet.ledger import Ledger
from testbed.fleet.spec import JobSpec, for_scenario, load_matrix
from testbed.fleet.status import live_workers, settle

DEFAULT_ATTEMPTS = 3


def is_matrix(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise FleetInputError(f"{path}: cannot read it: {e}") from e
    return isinstance(data, dict) and "scenarios" in data


def plan(path: Path, root: Path, constraints: dict[str, str | None]) -> list[JobSpec]:
    if not path.is_file():
        raise FleetInputError(f"{path}: no such scenario or matrix file")
    if is_matrix(path):
        return load_matrix(path, root, constraints)
    return [for_scenario(path, root, constraints)]


def place(broker: str, jobs: list[JobSpec], attempts: int) -> None:
    """Refuse the lot if a job fits no live worker; else record and queue every job."""
    if not 1 <= attempts <= 20:
        raise FleetInputError(f"--max-attempts {attempts}: a number from 1 to 20")
    r = connect(broker)
    workers = live_workers(r)
    refused = [(j, why) for j in jobs if (why := refusal(j, workers))]
    if refused:
        raise FleetInputError(
            f"{len(refused)} of {len(jobs)} job(s) cannot run on any live worker; nothing "
            "was submitted:\n" + "\n".join(f"  {j.label}: {why}" for j, why in refused))
    ledger, app = Ledger(r), celery_app(broker)
    for job in jobs:
        ledger.create(job, attempts)
        ledger.dispatch(app, job, 1)


def wait(broker: str, results: Path, ids: list[str], timeout: float,
         say: Any = print, poll: float = 1.0) -> bool:
    """Follow ``ids`` until each is indexed or failed; True when every one was indexed."""
    deadline = time.monotonic() + timeout
    while True:
        ledger, _, lines = settle(broker, results)
        for line in lines:
            say(line)
        jobs = {i: ledger.get(i) for i in ids}
        open_ = [i for i, j in jobs.items() if j is None or j.state not in ("indexed",
                                                                             "failed")]
        if not open_:
            return all(j is not None and j.state == "indexed" for j in jobs.values())
        if time.monotonic() > deadline:
            raise FleetError(f"{len(open_)} job(s) still open after {timeout:.0f} s "
                             f"(testbed jobs shows where they are): {', '.join(open_)}")
        time.sleep(poll)


def main(args: Any) -> int:
    constraints = {k: getattr(args, k) for k in ("provider", "route", "exit")
                   if getattr(args, k) is not None}
    jobs = plan(args.file, args.scenarios_root, constraints)
    place(args.broker, jobs, args.max_attempts)
    for j in jobs:
        print(f"submitted {j.job_id}: {j.label} (queue {j.queue})")
    print(f"{len(jobs)} job(s) submitted")
    if not args.wait:
        return 0
    ok = wait(args.broker, args.results, [j.job_id for j in jobs], args.timeout)
    print("every job indexed" if ok else "some jobs failed (testbed jobs)")
    return 0 if ok else 1
