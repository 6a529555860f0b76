"""``testbed vagrant status|destroy`` where there is nothing: clear words, exit 0, no trace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "vagrant-linux-lab.yaml"


def _testbed(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "testbed", *args], capture_output=True,
                          text=True, timeout=120)


def test_status_and_destroy_without_machines(tmp_path):
    status = _testbed("vagrant", "status", str(SCENARIO), "--results", str(tmp_path))
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("no machines of vagrant-linux-lab (folder ")
    destroy = _testbed("vagrant", "destroy", str(SCENARIO), "--results", str(tmp_path))
    assert destroy.returncode == 0, destroy.stderr
    assert destroy.stdout.startswith("nothing to remove (")
    assert list(tmp_path.iterdir()) == []


def test_a_bad_scenario_is_one_line_not_a_traceback(tmp_path):
    out = _testbed("vagrant", "destroy", str(tmp_path / "missing.yaml"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "missing.yaml" in out.stderr


def test_help_names_both_commands():
    out = _testbed("vagrant", "--help")
    assert out.returncode == 0 and "status" in out.stdout and "destroy" in out.stdout
