"""``pytest RUN`` judges only from what the run holds now: a run whose events are gone is still
collected (and judged inconclusive where it needs them), and a run it cannot read loses its
earlier verdicts, junit.xml and report instead of keeping them as if current."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.run import files as f
from tests.support import SEED_RUN


def judged_copy(tmp: Path) -> Path:
    run = tmp / "skype-2013-lab" / "seed-run"
    shutil.copytree(SEED_RUN, run, ignore=shutil.ignore_patterns("expected"))
    assert subprocess.run([sys.executable, "-m", "testbed", "analyze", str(run)],
                          capture_output=True, timeout=300).returncode == 0
    return run


def pytest_on(run: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"--rootdir={run}", "-o", "addopts=", str(run)],
                          capture_output=True, text=True, timeout=300)


def test_a_run_without_events_is_judged_again(tmp_path: Path) -> None:
    run = judged_copy(tmp_path)
    (run / f.EVENTS).unlink()
    out = pytest_on(run)
    assert "2 passed, 6 skipped" in out.stdout, out.stdout + out.stderr
    statuses = [v["status"] for v in json.loads((run / f.VERDICTS).read_text())["verdicts"]]
    assert statuses.count("pass") == 2  # what the capture proves; the rest needs the events


@pytest.mark.parametrize("content", ["", "{not json", '{"expectations": 7}'])
def test_a_run_it_cannot_read_keeps_no_earlier_verdicts(tmp_path: Path, content: str) -> None:
    run = judged_copy(tmp_path)
    (run / f.MANIFEST).write_text(content)
    out = pytest_on(run)
    assert out.returncode != 0 and "manifest.json" in out.stdout
    assert [n for n in f.JUDGED if (run / n).exists()] == []
    assert (run / f.ENDPOINTS).exists()  # the analysis is not pytest's to remove
