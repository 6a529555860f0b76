"""The walkthrough's fourth build, run for real: a build profile, servers on the map and a
scenario — no code — put a new build in the table and the verdicts."""

from __future__ import annotations

import csv
import json
import subprocess

import pytest

from .conftest import ROOT, TESTBED, needs_root, run_dirs

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root]


def test_a_fourth_build_in_japan_and_brazil(tmp_path):
    out = subprocess.run([*TESTBED, "run", "scenarios/skype-2024-lab.yaml", "--results",
                          str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    (run,) = run_dirs(tmp_path)
    with (run / "analysis" / "endpoints.csv").open() as f:
        rows = {r["address"]: r for r in csv.DictReader(f)}
    modern = {r["country"] for r in rows.values() if r["modern"] == "x"}
    assert modern == {"JP", "BR", "EE", "[multicast]"}
    assert rows["198.51.100.242"]["names"] == "edge-jp.skype2024.lab.example"
    assert "JP (dbip-city-lite-latest.mmdb" in rows["198.51.100.242"]["databases"]
    verdicts = json.loads((run / "verdicts.json").read_text())["verdicts"]
    assert {v["id"]: v["status"] for v in verdicts}["modern-only-jp-br-ee"] == "pass"
    assert all(v["status"] == "pass" for v in verdicts)
