"""A full disk at every point of a run, on the in-tree fakes: whatever write fails first, the
lab comes down, the failure is said in one line after it (exit 1, no traceback), no
``manifest.json.tmp`` stays, and — where the disk lets it write again — the manifest says
``failed`` with ``disk full`` and no phase is left ``running``. (The real lab on a real
small filesystem: tests/lab/test_lab_faults.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testbed import cli
from testbed.provider import POOLS
from testbed.scenario import load_scenario

from .support import PHASES, SEED, FullDisk, Roles

SESSIONS = [s.name for s in load_scenario(SEED).sessions]
#: the first write of each of these files (relative to the run) finds the disk full
FILES = ["events.jsonl", "screenshots/", "capture/tcpdump.log", "capture/mitmdump.log",
         "analysis/capture-scan.json", "analysis/endpoints.json", "analysis/evidence.json",
         "analysis/endpoints.csv", "analysis/endpoints.txt", "analysis/geo/", "verdicts.json",
         "junit.xml", "report.html"]
#: writes a run may do without (a cache): a disk that frees up at once costs nothing
OPTIONAL = ("analysis/capture-scan.json", "] analyze")
TRIGGERS = ([("progress", f"] {p}") for p in PHASES]
            + [("progress", f"session {s}") for s in SESSIONS]
            + [("write", name) for name in FILES])


def _trigger(kind: str, text: str) -> Any:
    def fires(what: str, value: str) -> bool:
        if what != kind:
            return False
        if kind == "progress":
            return value.endswith(text) if text.startswith("]") else value == text
        return text.rstrip("/") in value.split("/", 2)[-1]  # scenario/run-id/<file>
    return fires


def _run(tmp_path: Path, monkeypatch: Any, capsys: Any, disk: FullDisk,
         roles: Roles) -> tuple[int, str, Path | None]:
    monkeypatch.setitem(POOLS, "lab", roles.kind())
    def echo(*args: Any, **kw: Any) -> None:
        disk.progress(" ".join(map(str, args)))
        print(*args, **kw)

    monkeypatch.setattr(cli, "print", echo, raising=False)
    disk.install(monkeypatch)
    code = cli.main(["run", str(SEED), "--results", str(tmp_path / "results")])
    monkeypatch.undo()
    runs = list((tmp_path / "results" / "skype-2013-lab").glob("2*"))
    return code, capsys.readouterr().err, runs[0] if runs else None


@pytest.mark.parametrize("transient", [False, True], ids=["stays-full", "frees-up"])
@pytest.mark.parametrize(("kind", "text"), TRIGGERS, ids=[t for _, t in TRIGGERS])
def test_a_full_disk_anywhere_still_brings_the_lab_down(tmp_path, monkeypatch, capsys, kind,
                                                         text, transient):
    disk = FullDisk(tmp_path / "results", _trigger(kind, text), transient)
    roles = Roles()
    code, err, run = _run(tmp_path, monkeypatch, capsys, disk, roles)
    assert disk.failed, f"the disk never filled up at {text!r}: the case tests nothing"
    assert code == 1, err
    if transient and text in OPTIONAL:  # the scan cache was not written; nothing else failed
        assert "Traceback" not in err and "testbed:" not in err
        assert run is not None and not list(run.rglob("*.tmp")) and roles.torn_down()
        assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
        return
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("testbed: ") and "disk full" in lines[0], err
    assert run is not None
    assert roles.torn_down(), "the lab must come down whatever write failed"
    assert "the lab was torn down" in lines[0]
    assert not list(run.rglob("*.tmp")), "a failed write leaves no temporary file"
    m = json.loads((run / "manifest.json").read_text())  # always readable
    assert m["status"] != "complete"
    if transient:  # the disk let it write again: the run says what happened
        assert m["status"] == "failed", m
        assert "disk full" in m["error"]
        assert not [p for p, r in m["phases"].items() if r["status"] == "running"], m["phases"]
        assert m["phases"]["teardown"]["status"] == "ok"


def test_a_disk_full_before_anything_started_is_one_line(tmp_path, monkeypatch, capsys):
    disk = FullDisk(tmp_path / "results", lambda what, value: what == "write")
    roles = Roles()
    code, err, _ = _run(tmp_path, monkeypatch, capsys, disk, roles)
    assert code == 1
    assert err.count("\n") == 1 and "disk full" in err and "Traceback" not in err
    assert roles.gateway is None, "nothing of the lab was made"


@pytest.mark.parametrize("transient", [False, True], ids=["stays-full", "frees-up"])
@pytest.mark.parametrize("name", ["analysis/capture-scan.json", "analysis/endpoints.json",
                                  "analysis/endpoints.csv", "analysis/geo/", "verdicts.json",
                                  "report.html"])
def test_analyze_on_a_full_disk_says_so_and_leaves_no_half_analysis(
        tmp_path, monkeypatch, capsys, name, transient):
    roles = Roles()
    monkeypatch.setitem(POOLS, "lab", roles.kind())
    assert cli.main(["run", str(SEED), "--results", str(tmp_path / "results")]) == 1
    [run] = (tmp_path / "results" / "skype-2013-lab").glob("2*")
    before = json.loads((run / "manifest.json").read_text())
    capsys.readouterr()
    disk = FullDisk(run, lambda what, value: what == "write" and name.rstrip("/") in value,
                    transient)
    disk.install(monkeypatch)
    code = cli.main(["analyze", str(run)])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 1
    if not disk.failed:  # the capture's scan was reused: no cache write to fail
        assert name == "analysis/capture-scan.json" and "testbed:" not in err
        return
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("testbed: ")] == [
        ln for ln in err.splitlines() if "disk full" in ln], err
    assert "analysis failed: disk full" in err
    assert not list(run.rglob("*.tmp"))
    assert not (run / "analysis" / "endpoints.json").exists() or name in (
        "verdicts.json", "report.html")
    after = json.loads((run / "manifest.json").read_text())
    assert after["status"] == before["status"]
    assert not [p for p, r in after["phases"].items() if r["status"] == "running"]
