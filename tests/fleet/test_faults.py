"""The fleet's faults with real Redis and real worker processes (the runs themselves on the
in-tree fakes: no root, seconds each): a worker SIGKILLed mid-run, the broker killed
mid-matrix, a job delivered twice. Every run must end in the history exactly once."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from testbed.cli import main as cli
from testbed.fleet.engine import celery_app, connect, key, send
from testbed.fleet.ledger import Ledger
from testbed.fleet.status import live_workers, settle
from testbed.run.files import FLEET
from tests.fleet.conftest import ROOT, wait_for
from tests.lab.conftest import processes_mentioning

SEED = "skype-2013-lab.yaml"


def matrix(tmp_path: Path, runs: int) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(f"scenarios: [{ROOT / 'scenarios' / SEED}]\nrepeat: {runs}\n")
    return path


def submit(broker, tmp_path: Path, runs: int, *extra: str) -> list[str]:
    ledger = Ledger(connect(broker.url))
    before = {j.id for j in ledger.all()}
    assert cli(["submit", str(matrix(tmp_path, runs)), "--broker", broker.url,
                "--scenarios-root", str(ROOT / "scenarios"), *extra]) == 0
    return [j.id for j in ledger.all() if j.id not in before]


def live(broker, n: int) -> None:
    wait_for(f"{n} live worker(s)", lambda: len(live_workers(connect(broker.url))) >= n, 30)


def settled(broker, results: Path, ids: list[str]) -> bool:
    ledger, _, _ = settle(broker.url, results)
    return all((j := ledger.get(i)) is not None and j.state in ("indexed", "failed")
               for i in ids)


def history_rows(results: Path) -> tuple[list[tuple], list[tuple]]:
    con = sqlite3.connect(results / "history.sqlite")
    runs = con.execute("SELECT scenario, run_id, status, good FROM runs").fetchall()
    jobs = con.execute("SELECT job_id, run_id, attempt, retried FROM fleet_jobs").fetchall()
    con.close()
    return runs, jobs


def test_a_worker_killed_mid_run_loses_no_run_and_indexes_each_once(tmp_path, broker,
                                                                     workers, capsys):
    results = tmp_path / "coordinator"
    env = {"FLEET_FAKE_SECONDS": "3"}
    a, b = workers("alpha", env=env), workers("beta", env=env)
    live(broker, 2)
    ids = submit(broker, tmp_path, 4, "--max-attempts", "2")
    ledger = Ledger(connect(broker.url))
    victim = wait_for("a job running on alpha", lambda: next(
        (j for j in ledger.all() if j.state == "running" and j.get("worker") == "alpha"
         and j.get("phase").find("session") >= 0), None), 60, 0.05)
    a.sigkill()
    wait_for("every job indexed", lambda: settled(broker, results, ids), 90, 0.5)
    jobs = {i: ledger.get(i) for i in ids}
    assert all(j.state == "indexed" for j in jobs.values()), \
        {i: (j.state, j.get("error")) for i, j in jobs.items()}
    retried = jobs[victim.id]
    assert retried.attempt == 2 and retried.get("worker") == "beta"
    assert [x["worker"] for x in retried.lost] == ["alpha"]
    runs, fleet = history_rows(results)
    assert len(runs) == len(fleet) == 4, "every job once in the history, no more"
    assert sorted(r[0] for r in fleet) == sorted(ids)
    assert {r[0]: r[3] for r in fleet}[victim.id] == 1, "the retried job is marked"
    [run] = [r for r in runs if r[1] == retried.get("run_id")]
    marked = json.loads((results / run[0] / run[1] / FLEET).read_text())
    assert marked["retried"] is True and marked["lost"][0]["worker"] == "alpha"
    # alpha restarts: it marks its partial run abandoned and sends it back, kept outside
    # the index
    a2 = workers("alpha", env=env)
    wait_for("alpha's partial run at the coordinator", lambda: (settle(broker.url, results),
             list((results / ".fleet" / "partial").glob(f"{victim.id}-1/*/*")))[1], 30)
    [partial] = (results / ".fleet" / "partial").glob(f"{victim.id}-1/*/*")
    manifest = json.loads((partial / "manifest.json").read_text())
    assert manifest["status"] == "abandoned"
    assert json.loads((partial / FLEET).read_text())["partial"] is True
    assert len(history_rows(results)[0]) == 4, "the partial run is never indexed"
    assert "partial run" in a2.text() and "marked abandoned" in a2.text()
    assert cli(["jobs", "--broker", broker.url, "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "done (4)" in out and "retried (1 attempt(s) lost)" in out
    for w in (a2, b):
        w.stop()
    assert not connect(broker.url).keys(key("bundle", "*")), "no bundle left on the broker"
    assert not connect(broker.url).keys(key("lease", "*")), "no lease left"
    broker.stop()
    assert processes_mentioning(str(tmp_path)) == [], "no worker, tool or broker left"


def test_the_broker_killed_mid_matrix_loses_no_submission(tmp_path, broker, workers):
    results = tmp_path / "coordinator"
    env = {"FLEET_FAKE_SECONDS": "1"}
    workers("alpha", env=env)
    live(broker, 1)
    ids = submit(broker, tmp_path, 5)
    ledger = Ledger(connect(broker.url))
    wait_for("a job running", lambda: any(j.state == "running" for j in ledger.all()), 30)
    broker.kill()  # SIGKILL: only what the append-only file holds comes back
    broker.start()
    wait_for("every job indexed", lambda: settled(broker, results, ids), 120, 0.5)
    states = [ledger.get(i).state for i in ids]
    assert states == ["indexed"] * 5
    runs, fleet = history_rows(results)
    assert len(runs) == len(fleet) == 5


@pytest.mark.parametrize("which", ["same attempt", "old attempt"])
def test_a_job_delivered_twice_is_indexed_once(tmp_path, broker, workers, which):
    results = tmp_path / "coordinator"
    workers("alpha", env={"FLEET_FAKE_SECONDS": "0"})
    live(broker, 1)
    [job_id] = submit(broker, tmp_path, 1)
    wait_for("the job indexed", lambda: settled(broker, results, [job_id]), 60, 0.3)
    ledger = Ledger(connect(broker.url))
    job = ledger.get(job_id)
    attempt = job.attempt if which == "same attempt" else job.attempt - 1
    send(celery_app(broker.url), job_id, attempt, job.spec.queue)  # the broker hands it again
    wait_for("the queue drained", lambda: connect(broker.url).llen(job.spec.queue) == 0, 30)
    settle(broker.url, results)
    runs, fleet = history_rows(results)
    assert len(runs) == len(fleet) == 1
    assert ledger.get(job_id).state == "indexed"


def test_a_worker_with_concurrency_runs_jobs_side_by_side(tmp_path, broker, workers):
    results = tmp_path / "coordinator"
    workers("alpha", "--concurrency", "2", env={"FLEET_FAKE_SECONDS": "3"})
    live(broker, 1)
    ids = submit(broker, tmp_path, 2)
    ledger = Ledger(connect(broker.url))
    wait_for("both jobs running at once on alpha", lambda: sum(
        j.state == "running" and j.get("worker") == "alpha" for j in ledger.all()) == 2, 60,
        0.1)
    wait_for("both indexed", lambda: settled(broker, results, ids), 60, 0.5)
    assert len(history_rows(results)[1]) == 2
