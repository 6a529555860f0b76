"""``testbed nightly --distributed``: every nightly scenario is submitted to the fleet at once;
then, scenario by scenario, the nightly waits for its run, brings it in and compares it with
the last good run exactly as a local nightly does (``testbed.history.nightly``).

A run is brought in only when its scenario's turn comes, so the baseline the nightly looks up
first is never the new run itself."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from testbed._errors import TestbedError
from testbed.fleet.bundle import Store, _lock
from testbed.fleet.engine import FleetError, celery_app, connect
from testbed.fleet.ledger import Ledger
from testbed.fleet.spec import JobSpec, for_scenario
from testbed.fleet.submit import place
from testbed.history.index import History
from testbed.history.nightly import NightlyReport, find_nightly, nightly

Progress = Any


def run_distributed(scenarios_dir: Path, results: Path, broker: str, root: Path,
                    history: History | None = None, attempts: int = 3,
                    timeout: float = 6 * 3600, poll: float = 1.0,
                    out: Progress = None) -> NightlyReport:
    results = Path(results).resolve()
    jobs: dict[Path, JobSpec] = {}
    for file in find_nightly(scenarios_dir):
        try:
            jobs[file.resolve()] = for_scenario(file, root, nightly=True)
        except TestbedError:
            continue  # the local nightly reports an invalid scenario itself
    place(broker, list(jobs.values()), attempts)
    r = connect(broker)
    ledger, app = Ledger(r), celery_app(broker)
    store = Store(results, history.path if history else None)
    deadline = time.monotonic() + timeout

    def run(scenario: Any, results_dir: Path, progress: Any) -> Path:
        spec = jobs.get(Path(scenario.path).resolve())
        if spec is None:
            raise FleetError(f"{scenario.path}: was not submitted")
        progress(f"waiting for job {spec.job_id} on the fleet")
        while True:
            for line in ledger.reap(app):
                progress(line)
            job = ledger.get(spec.job_id)
            if job is None:
                raise FleetError(f"job {spec.job_id} vanished from the broker")
            if job.state == "failed":
                raise FleetError(f"job {spec.job_id} failed: {job.get('error')}")
            if job.state in ("done", "indexed"):
                break
            if time.monotonic() > deadline:
                raise FleetError(f"job {spec.job_id} still {job.state} after {timeout:.0f} s")
            time.sleep(poll)
        with _lock(store.results):
            if job.state == "done":
                progress(store.ingest_one(ledger, spec.job_id))
        placed = store.indexed(spec.job_id)
        if placed is None:
            raise FleetError(f"job {spec.job_id}: its run was not indexed")
        return store.results / placed[0] / placed[1]

    return nightly(scenarios_dir, results, history=history, run=run, out=out)
