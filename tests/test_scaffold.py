"""`testbed new scenario|app`: documented starting files that validate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "testbed", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_new_scenario_from_the_seed_validates(tmp_path):
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    out = run_cli("new", "scenario", "my-study", "--from", "skype-2013-lab", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    made = tmp_path / "scenarios" / "my-study.yaml"
    assert "scenario: my-study" in made.read_text()
    assert run_cli("validate", str(made), cwd=tmp_path).returncode == 0
    again = run_cli("new", "scenario", "my-study", cwd=tmp_path)
    assert again.returncode == 2 and "exists already" in again.stderr
    missing = run_cli("new", "scenario", "x", "--from", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "no such scenario" in missing.stderr


def test_new_app_writes_every_action_and_an_images_folder(tmp_path):
    out = run_cli("new", "app", "myapp", "--folder", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    profile = tmp_path / "apps" / "myapp.yaml"
    text = profile.read_text()
    for action in ("launch:", "login:", "about:", "chat_send:", "chat_wait:", "chat_absent:"):
        assert action in text
    assert (tmp_path / "apps" / "myapp" / "README.md").exists()
    assert run_cli("validate", str(profile), cwd=tmp_path).returncode == 0
    bad = run_cli("new", "app", "Bad Name", "--folder", str(tmp_path), cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_the_walkthroughs_scenario_validates():
    out = run_cli("validate", "scenarios/skype-2024-lab.yaml", cwd=ROOT)
    assert out.returncode == 0, out.stderr
