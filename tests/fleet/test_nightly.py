"""``testbed nightly --distributed``: the nightly scenarios go to the fleet at once, and each
new run is compared with its last good run as a local nightly does."""

from __future__ import annotations

import shutil
import sqlite3

import yaml

from testbed.cli import main as cli
from testbed.fleet.engine import connect
from testbed.fleet.ledger import Ledger
from testbed.fleet.status import live_workers
from tests.fleet.conftest import ROOT, wait_for


def test_the_nightly_fans_out_and_compares_each_run(tmp_path, broker, workers, capsys):
    scenarios = tmp_path / "scenarios"
    for sub in ("apps", "lab"):
        shutil.copytree(ROOT / "scenarios" / sub, scenarios / sub, symlinks=True)
    seed = yaml.safe_load((ROOT / "scenarios" / "skype-2013-lab.yaml").read_text())
    for name in ("night-a", "night-b"):
        (scenarios / f"{name}.yaml").write_text(yaml.safe_dump(
            seed | {"scenario": name, "nightly": True}, sort_keys=False, allow_unicode=True))
    root = ["--scenarios-root", str(scenarios)]
    for w in ("alpha", "beta"):
        workers(w, *root, env={"FLEET_FAKE_SECONDS": "1"})
    wait_for("two live workers", lambda: len(live_workers(connect(broker.url))) == 2, 30)
    results = tmp_path / "coordinator"
    argv = ["nightly", "--distributed", "--scenarios", str(scenarios), "--results",
            str(results), "--broker", broker.url, *root]
    cli(argv)  # the fakes' runs judge nothing: not good, so exit 1, and no baseline yet
    out = capsys.readouterr().out
    assert "== night-a" in out and "== night-b" in out
    assert "no baseline" in out
    jobs = Ledger(connect(broker.url)).all()
    assert len(jobs) == 2 and {j.state for j in jobs} == {"indexed"}
    assert {j.get("worker") for j in jobs} <= {"alpha", "beta"}
    con = sqlite3.connect(results / "history.sqlite")
    rows = con.execute("SELECT scenario, nightly FROM runs ORDER BY scenario").fetchall()
    con.close()
    assert rows == [("night-a", 1), ("night-b", 1)], "each recorded once, as a nightly"
