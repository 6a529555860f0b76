#!/usr/bin/env python3
"""Benchmark: runs per hour on the fleet (Celery + Redis) with one worker and with two, on a
light lab scenario (``lab_scenario.py``, two guests), and the coordination overhead per run
beside the run's own time:

* submit -> start: from ``testbed submit`` recording the job to a worker claiming it;
* run: the run itself (``run_scenario``), as the worker measured it;
* bundle: packing the run and storing the bundle in the broker;
* finish -> indexed: from the bundle being ready to the run being unpacked and indexed in the
  coordinator's history (the coordinator polls every 0.5 s).

A real broker (Debian's redis-server, AOF on) on loopback and real ``testbed worker``
processes with their own results folders; the coordinator is this process. The lab needs
root; ``--fake`` runs the orchestrator on the in-tree fakes instead (no root: the coordination
cost alone).

    .venv/bin/python benchmarks/bench_fleet.py [--runs N] [--fake]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from lab_scenario import write  # noqa: E402

from testbed.cli import main as cli  # noqa: E402
from testbed.fleet.engine import connect  # noqa: E402
from testbed.fleet.ledger import Job, Ledger  # noqa: E402
from testbed.fleet.status import live_workers, settle  # noqa: E402
from tests.fleet.conftest import Broker, WorkerProc, _free_port  # noqa: E402


def scenario(folder: Path) -> Path:
    for sub in ("apps", "lab"):
        shutil.copytree(ROOT / "scenarios" / sub, folder / sub, symlinks=True)
    return write(2, folder)


def batch(tmp: Path, broker: Broker, n_workers: int, runs: int, scen: Path,
          fake: bool) -> tuple[float, list[Job]]:
    """Wall seconds from submit to the last run indexed, and the jobs."""
    folder = tmp / f"{n_workers}w"
    folder.mkdir()
    started: list[WorkerProc] = []
    try:
        for i in range(n_workers):
            argv = [sys.executable, "-m", "testbed", "worker", "--broker", broker.url,
                    "--results", str(folder / f"worker{i}"), "--name", f"w{i}",
                    "--scenarios-root", str(scen.parent), "--heartbeat", "1"]
            if fake:
                argv += ["--runner", "tests.fleet.runners:fake"]
            env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                   "FLEET_FAKE_SECONDS": "2", "HOME": str(Path.home())}
            started.append(WorkerProc(f"w{i}", folder, argv, env,
                                      folder / f"w{i}.log").start())
        r = connect(broker.url)
        deadline = time.monotonic() + 60
        while len(live_workers(r)) < n_workers:
            if time.monotonic() > deadline:
                raise SystemExit("workers did not come up; see " + str(folder))
            time.sleep(0.2)
        matrix = scen.parent / f"matrix-{n_workers}.yaml"
        matrix.write_text(f"scenarios: [{scen.name}]\nrepeat: {runs}\n")
        ledger = Ledger(r)
        before = {j.id for j in ledger.all()}
        t0 = time.time()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli(["submit", str(matrix), "--broker", broker.url, "--scenarios-root",
                        str(scen.parent)])
        assert code == 0
        ids = [j.id for j in ledger.all() if j.id not in before]
        results = folder / "coordinator"
        while True:
            settle(broker.url, results)
            jobs = [ledger.get(i) for i in ids]
            if all(j is not None and j.state in ("indexed", "failed") for j in jobs):
                break
            time.sleep(0.5)
        wall = max(j.time("indexed") or j.time("finished") or t0 for j in jobs if j) - t0
        return wall, [j for j in jobs if j is not None]
    finally:
        for w in started:
            w.stop()


def med(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s" if values else "     -"


def low_med(values: list[float]) -> str:
    return f"{min(values):.2f}/{statistics.median(values):.2f} s" if values else "-"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=4, help="runs per batch (default: 4)")
    p.add_argument("--fake", action="store_true", help="the in-tree fakes, not the lab")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as t:
        tmp = Path(t)
        (tmp / "redis").mkdir()
        broker = Broker(_free_port(), tmp / "redis")
        broker.start()
        try:
            scen = scenario(tmp / "scenarios")
            rows = []
            for n in (1, 2):
                wall, jobs = batch(tmp, broker, n, args.runs, scen, args.fake)
                rows.append((n, wall, jobs))
        finally:
            broker.stop()
    kind = "fakes (orchestrator on in-tree fakes)" if args.fake else "lab, 2 guests"
    print(f"fleet benchmark: {args.runs} runs of lab-bench-2 per batch ({kind}); "
          "Celery + Redis on loopback, this machine's cores shared by the workers")
    print(f"{'workers':>7}  {'wall':>8}  {'runs/hour':>9}  {'submit->start':>13}  "
          f"{'run':>8}  {'bundle':>8}  {'finish->indexed':>15}  failed")
    for n, wall, jobs in rows:
        done = [j for j in jobs if j.state == "indexed"]

        def span(a: str, b: str, js: list[Job] = done) -> list[float]:
            return [(j.time(b) or 0) - (j.time(a) or 0) for j in js
                    if j.time(a) and j.time(b)]

        print(f"{n:>7}  {wall:7.1f}s  {3600 * len(done) / wall:9.1f}  "
              f"{low_med(span('submitted', 'started')):>13}  {med(span('started', 'ran')):>8}  "
              f"{med(span('ran', 'finished')):>8}  {med(span('finished', 'indexed')):>15}  "
              f"{len(jobs) - len(done)}")
    one, two = rows[0][1], rows[1][1]
    print(f"two workers / one: {one / two:.2f}x the runs per hour. Spans are medians per run; "
          "submit->start is min/median (the median includes waiting for a free worker)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
