"""A run's owner (pid, boot id, start time) and the status read from it: a run that says it is
going on while its process is gone is ``abandoned`` — for ``testbed history``, for the next
run, for ``lab cleanup``. Older manifests without an owner are read as they say."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from testbed.cli import main as cli_main
from testbed.orchestrator.rundir import mark_abandoned
from testbed.run import Manifest
from testbed.run.liveness import Owner, boot_id, effective_status
from tests.support import gone_owner

ME = Owner.me()
OWNERS = {
    "this process": (ME, True),
    "this process, no start time recorded": (replace(ME, start=None), True),
    "a process that ended": (gone_owner(), False),
    "this pid on another boot": (replace(ME, boot_id="0" * 8), False),
    "this pid, started at another time (a reused pid)": (replace(ME, start=(ME.start or 0) + 1),
                                                         False),
    "a pid that never existed": (Owner(pid=2 ** 22 + 7, boot_id=boot_id()), False),
}


@pytest.mark.parametrize("name", list(OWNERS))
def test_an_owner_is_alive_only_while_its_very_process_runs(name):
    owner, alive = OWNERS[name]
    assert owner.alive() is alive
    assert Owner.from_json(json.loads(json.dumps(owner.to_json()))) == owner


STATUSES = ["running", "analyzing", "complete", "failed", "interrupted", "abandoned", None]


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("name", list(OWNERS))
def test_only_a_live_status_of_a_gone_process_reads_as_abandoned(name, status):
    owner, alive = OWNERS[name]
    got = effective_status(status, owner.to_json())
    if status in ("running", "analyzing") and not alive:
        assert got == "abandoned"
    else:
        assert got == (status or "unknown")


@pytest.mark.parametrize("raw", [None, {}, {"pid": "x"}, [1, 2], {"boot_id": "b"}])
@pytest.mark.parametrize("status", ["running", "complete"])
def test_manifests_without_a_usable_owner_read_as_they_say(raw, status):
    assert effective_status(status, raw) == status  # older runs: nothing to judge by
    if not isinstance(raw, list):  # (a list is a damaged manifest: RunFileError names it)
        m = Manifest.from_json({"status": status} | ({"process": raw} if raw is not None
                                                     else {}))
        assert m.current_status == status


def _run_dir(results: Path, name: str, status: str, owner: Owner | None) -> Path:
    run = results / "skype-2013-lab" / name
    run.mkdir(parents=True)
    m = {"testbed_run": 1, "run_id": name, "status": status, "started": 1_800_000_000.0,
         "scenario": {"name": "skype-2013-lab"}}
    if owner is not None:
        m["process"] = owner.to_json()
    (run / "manifest.json").write_text(json.dumps(m))
    return run


CASES = {  # run name -> (status, owner, what history lists, marked by the next run)
    "killed": ("running", gone_owner(), "abandoned", True),
    "killed-analysing": ("analyzing", gone_owner(), "abandoned", True),
    "live": ("running", ME, "running", False),
    "old-format": ("running", None, "running", False),
    "finished": ("complete", gone_owner(), "complete", False),
}


def test_history_lists_killed_runs_as_abandoned_never_running(tmp_path, capsys):
    for name, (status, owner, _, _) in CASES.items():
        _run_dir(tmp_path, name, status, owner)
    assert cli_main(["history", "skype-2013-lab", "--results", str(tmp_path), "--json"]) == 0
    listed = {r["run_id"]: r["status"] for r in json.loads(capsys.readouterr().out)}
    assert listed == {name: case[2] for name, case in CASES.items()}


def test_history_sees_a_run_die_after_it_was_indexed(tmp_path, capsys):
    owner = gone_owner()
    run = _run_dir(tmp_path, "later", "running", ME)
    assert cli_main(["history", "skype-2013-lab", "--results", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "running"
    m = json.loads((run / "manifest.json").read_text()) | {"process": owner.to_json()}
    (run / "manifest.json").write_text(json.dumps(m))  # its process is gone now
    assert cli_main(["history", "skype-2013-lab", "--results", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "abandoned"


def test_the_next_run_marks_killed_runs_abandoned_and_leaves_the_rest(tmp_path):
    runs = {name: _run_dir(tmp_path, name, s, o) for name, (s, o, _, _) in CASES.items()}
    before = {n: (p / "manifest.json").read_text() for n, p in runs.items()}
    marked = mark_abandoned(tmp_path / "skype-2013-lab", but=runs["live"])
    assert sorted(p.name for p in marked) == sorted(n for n, c in CASES.items() if c[3])
    for name, path in runs.items():
        m = json.loads((path / "manifest.json").read_text())
        if CASES[name][3]:
            assert m["status"] == "abandoned" and "ended without finishing" in m["error"]
        else:
            assert (path / "manifest.json").read_text() == before[name]
