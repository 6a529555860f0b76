"""The fleet on the embedded lab for real (root): a real broker, two workers with their own
results folders, a matrix of four runs of a two-guest scenario; one worker SIGKILLed mid-run.
Every run ends in the coordinator's history exactly once, the retried one is marked, and once
the killed worker is back nothing of its run is left: no namespace, link or process."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from testbed.cli import main as cli
from testbed.fleet.engine import connect, key
from testbed.fleet.ledger import Ledger
from testbed.fleet.status import live_workers, settle
from testbed.run.files import FLEET
from tests.fleet.conftest import ROOT, wait_for
from tests.lab.conftest import needs_root, processes_mentioning, run_objects

pytestmark = [pytest.mark.e2e, pytest.mark.root, needs_root]
RUNS = 4


def light_scenario(folder: Path) -> Path:
    """benchmarks/lab_scenario.py's two-guest scenario, in a folder of its own with copies of
    the app profiles and lab files it names (a scenario's references stay inside its folder)."""
    for sub in ("apps", "lab"):
        shutil.copytree(ROOT / "scenarios" / sub, folder / sub, symlinks=True)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from lab_scenario import write
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return write(2, folder)


def test_four_lab_runs_on_two_workers_one_killed_mid_run(tmp_path, broker, workers):
    scenarios = tmp_path / "scenarios"
    scenario = light_scenario(scenarios)
    root = ["--scenarios-root", str(scenarios)]
    a = workers("alpha", *root, runner=None)
    b = workers("beta", *root, runner=None)
    r = connect(broker.url)
    wait_for("two live workers", lambda: len(live_workers(r)) == 2, 60)
    matrix = scenarios / "matrix.yaml"
    matrix.write_text(f"scenarios: [{scenario.name}]\nrepeat: {RUNS}\n")
    assert cli(["submit", str(matrix), "--broker", broker.url, *root,
                "--max-attempts", "2"]) == 0
    ledger = Ledger(r)
    ids = [j.id for j in ledger.all()]
    victim = wait_for("a lab run going on at alpha", lambda: next(
        (j for j in ledger.all() if j.state == "running" and j.get("worker") == "alpha"
         and j.get("lab_tag") and "session" in j.get("phase")), None), 120, 0.1)
    tag = victim.get("lab_tag")
    a.sigkill(group=False)  # the worker only: its lab stays behind, as after a crash
    assert run_objects(tag), "the killed run's lab is still there before the sweep"
    results = tmp_path / "coordinator"

    def all_settled() -> bool:
        settle(broker.url, results)
        return all(ledger.get(i).state in ("indexed", "failed") for i in ids)

    a2 = workers("alpha", *root, runner=None)  # alpha back: sweeps its own leftovers
    wait_for("every job indexed", all_settled, 180, 1.0)
    jobs = {i: ledger.get(i) for i in ids}
    assert [j.state for j in jobs.values()] == ["indexed"] * RUNS, \
        {i: j.get("error") for i, j in jobs.items()}
    retried = jobs[victim.id]
    assert retried.attempt == 2 and retried.lost[0]["worker"] == "alpha"
    con = sqlite3.connect(results / "history.sqlite")
    runs = con.execute("SELECT run_id, status, good FROM runs").fetchall()
    fleet = dict(con.execute("SELECT job_id, retried FROM fleet_jobs").fetchall())
    con.close()
    assert len(runs) == RUNS and sorted(fleet) == sorted(ids), "each run once"
    assert fleet[victim.id] == 1 and sum(fleet.values()) == 1, "the retried one marked"
    assert all(status == "complete" for _, status, _ in runs), runs
    run = results / "lab-bench-2" / retried.get("run_id")
    assert json.loads((run / FLEET).read_text())["retried"] is True
    wait_for("alpha's partial run at the coordinator", lambda: (
        settle(broker.url, results),
        list((results / ".fleet" / "partial").glob(f"{victim.id}-1/*/*")))[1], 30)
    assert "swept lab tag " + tag in a2.text()
    a2.stop()
    b.stop()
    assert run_objects(tag) == [], "the killed run's lab was swept"
    for j in jobs.values():
        assert run_objects(j.get("lab_tag")) == []
    assert not r.keys(key("bundle", "*")) and not r.keys(key("worker", "*"))
    broker.stop()
    assert processes_mentioning(str(tmp_path)) == [], "no worker, lab process or broker left"
