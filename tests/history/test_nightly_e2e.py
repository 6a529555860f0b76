"""`testbed nightly` on the embedded lab, for real: three runs of the seed scenario (~20 s each).
The third run has a regular build that also signs in to a server in China: a regression."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import copy_seed_scenarios

ROOT = Path(__file__).resolve().parents[2]
NIGHTLY = [sys.executable, "-m", "testbed", "nightly"]
CN_LOGIN = "tls://srv-211-100-40-15.cn.lab.example:443/session"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.root,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("Xvfb") is None or shutil.which("tcpdump") is None,
        reason="the lab needs root, Xvfb and tcpdump (make setup installs them; run as root)"),
]


def test_nightly_finds_a_new_china_server(tmp_path):
    scenarios, results = tmp_path / "scenarios", tmp_path / "results"
    copy_seed_scenarios(scenarios)

    def night() -> subprocess.CompletedProcess[str]:
        return subprocess.run([*NIGHTLY, "--scenarios", str(scenarios), "--results",
                               str(results)], cwd=ROOT, capture_output=True, text=True,
                              timeout=600)

    first = night()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "skype-2013-lab: no baseline" in first.stdout

    second = night()
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "compared with the last good run" in second.stdout
    assert "skype-2013-lab: no regression" in second.stdout

    build = scenarios / "lab" / "builds" / "regular.yaml"
    text = build.read_text()
    assert "\nlogin:" in text
    head, tail = text.split("\nlogin:", 1)
    first_line, rest = tail.split("\n", 1)
    build.write_text(f"{head}\nlogin:{first_line}\n  - {CN_LOGIN}\n{rest}")

    third = night()
    out = third.stdout
    assert third.returncode == 1, out[-3000:] + third.stderr[-3000:]
    assert "regular: now reaches CN (new: 203.0.113.15 stands for 211.100.40.15)" in out
    assert "regular: new endpoint 203.0.113.15 (CN, stands for 211.100.40.15" in out
    assert "verdict regular-never_reaches-country-CN: pass -> fail (REGRESSION)" in out
    assert "skype-2013-lab: REGRESSION" in out

    from testbed.history.index import History

    runs = History(results / "history.sqlite").runs("skype-2013-lab")
    assert [(r.nightly, r.regression) for r in runs] == [
        (True, True), (True, False), (True, False)]
    assert runs[0].countries["regular"].count("CN") == 1
