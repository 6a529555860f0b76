"""The real lab with its results on a small filesystem (a tmpfs of 400 KB or 2 MB): whatever
write fails first, nothing of the run remains, the CLI says it in one line (exit 1, no
traceback), no ``*.tmp`` stays, and ``testbed analyze`` on the full disk says so as well."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, TESTBED, needs_root, processes_mentioning, run_dirs, run_objects

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root]


@pytest.fixture(params=["400k", "2m"])
def small_disk(request, tmp_path) -> Iterator[Path]:
    mnt = tmp_path / f"disk-{request.param}"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={request.param},mode=0755", "tmpfs",
                    str(mnt)], check=True)
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(mnt)], check=False))
    return mnt


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("testbed: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_a_full_disk_leaves_nothing_of_the_run_and_says_so(small_disk):
    results = small_disk / "results"
    proc = subprocess.run([*TESTBED, "run", "scenarios/skype-2013-lab.yaml", "--results",
                           str(results)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    m = re.search(r"\(lab tag ([0-9a-f]{4})\)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    tag = m.group(1)
    left = run_objects(tag)
    print(f"{small_disk.name}: {len(left)} objects of the run left: {left}")
    assert left == [], "the lab must come down whatever write failed"
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    line = _one_line(proc.stderr)
    assert "disk full" in line and "the lab was torn down" in line
    (run,) = run_dirs(results)
    assert processes_mentioning(str(run)) == []
    assert not list(run.rglob("*.tmp"))
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] not in ("complete", "running", "analyzing")
    print(f"{small_disk.name}: manifest status {manifest['status']}: {manifest.get('error')}")
    assert "disk full" in manifest.get("error", "")
    assert not [p for p, r in manifest["phases"].items() if r["status"] == "running"]
    if (run / "capture" / "gateway.pcap").exists():  # analysis again, on the full disk
        again = subprocess.run([*TESTBED, "analyze", str(run)], cwd=ROOT,
                               capture_output=True, text=True, timeout=300)
        assert "Traceback" not in again.stdout + again.stderr
        if again.returncode != 0:
            assert "disk full" in _one_line(again.stderr)
        assert not list(run.rglob("*.tmp"))
        after = json.loads((run / "manifest.json").read_text())
        assert not [p for p, r in after["phases"].items() if r["status"] == "running"]
