"""Before anything starts, a real-VM scenario says exactly what this machine lacks."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from testbed.scenario import load_scenario
from testbed.vagrant.preflight import PLACEHOLDER_SHA256, scenario_checks

ROOT = Path(__file__).resolve().parents[2]


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    return tmp_path / "scenarios" / "skype-2013.yaml"


def _check(checks, what):
    (c,) = [c for c in checks if c.what == what]
    return c


def test_the_real_study_validates():
    out = subprocess.run([sys.executable, "-m", "testbed", "validate",
                          "scenarios/skype-2013.yaml"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_installers_are_checked_by_hash(tmp_path):
    path = _copy(tmp_path)
    installers = path.parent / "installers"
    checks = scenario_checks(load_scenario(path))
    missing = _check(checks, "regular: installer")
    assert not missing.ok and "not found" in missing.detail and "README.md" in missing.fix
    (installers / "SkypeSetupFull-6.3.0.105.exe").write_bytes(b"MZ fake installer")
    placeholder = _check(scenario_checks(load_scenario(path)), "regular: installer")
    assert not placeholder.ok and "placeholder" in placeholder.detail
    real = hashlib.sha256(b"MZ fake installer").hexdigest()
    path.write_text(path.read_text().replace(PLACEHOLDER_SHA256, real, 1))
    assert _check(scenario_checks(load_scenario(path)), "regular: installer").ok
    (installers / "SkypeSetupFull-6.3.0.105.exe").write_bytes(b"MZ another build")
    wrong = _check(scenario_checks(load_scenario(path)), "regular: installer")
    assert not wrong.ok and "differs" in wrong.fix


def test_reference_images_and_boxes_are_listed(tmp_path):
    checks = scenario_checks(load_scenario(_copy(tmp_path)))
    images = _check(checks, "regular: reference images of app skype-classic")
    assert not images.ok and "14 of 14 missing" in images.detail
    boxes = [c for c in checks if c.what.startswith("box ")]
    assert {c.what for c in boxes} == {"box gusztavvargadr/windows-10"}
    assert all("vagrant box add" in c.fix for c in boxes)


def test_what_this_version_cannot_do_is_said(tmp_path):
    checks = scenario_checks(load_scenario(_copy(tmp_path)))
    internet = _check(checks, "internet behind the gateway")
    assert not internet.ok and "real internet" in internet.detail and "lab:" in internet.fix
    # Windows guests over their OpenSSH: what the machine needs for that, and nothing of WinRM
    assert not [c for c in checks if "WinRM" in c.what or "winrm" in c.what
                or ("not built" in c.detail and c.what != "internet behind the gateway")]
    winssh = [c for c in checks if c.what.startswith("vagrant communicator ")]
    assert [c.what.split()[2] for c in winssh] == ["winssh"]
    box = _check(checks, "box gusztavvargadr/windows-10")
    assert box.detail == "communicator winssh"


def test_the_linux_vm_scenario_needs_only_what_can_be_had_here(tmp_path, monkeypatch):
    monkeypatch.setenv("VAGRANT_HOME", str(tmp_path / "empty-vagrant-home"))
    checks = scenario_checks(load_scenario(ROOT / "scenarios" / "vagrant-linux-lab.yaml"))
    box = _check(checks, "box testbed/debian12")
    assert not box.ok and "build-debian-box.sh" in box.fix
    assert _check(checks, "internet behind the gateway").ok
    assert not [c for c in checks if "WinRM" in c.what or "installer" in c.what]


def test_run_stops_before_doing_anything(tmp_path):
    path = _copy(tmp_path)
    results = tmp_path / "results"
    out = subprocess.run([sys.executable, "-m", "testbed", "run", str(path), "--results",
                          str(results)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "cannot run on this machine; nothing was started" in out.stderr
    assert "SkypeSetupFull-6.3.0.105.exe not found" in out.stderr
    assert "fix:" in out.stderr and "Traceback" not in out.stderr
    assert not results.exists()


def test_doctor_reports_every_provider():
    out = subprocess.run([sys.executable, "-m", "testbed", "doctor"], capture_output=True,
                         text=True, timeout=120)
    assert "provider lab (embedded lab):" in out.stdout
    assert "provider vagrant (real VMs):" in out.stdout
    assert ("MISSING" in out.stdout) == (out.returncode == 1)
    for line in out.stdout.splitlines():
        if "MISSING" in line:
            nxt = out.stdout.splitlines()[out.stdout.splitlines().index(line) + 1]
            assert nxt.strip().startswith("fix:"), line
