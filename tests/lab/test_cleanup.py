"""``testbed lab cleanup`` removes the objects of lab runs whose process is gone, and leaves
runs that are still going on alone (unless told ``--all``). Real namespaces, links and
processes under run tags of this test's own; every case looks at (and removes) only those
(``--tag``), so it can run beside other lab runs."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.lab import netns, owners
from testbed.run.liveness import Owner
from tests.support import gone_owner

from .conftest import TESTBED, run_objects

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def _tag() -> str:
    while True:
        tag = secrets.token_hex(2)
        if not run_objects(tag) and not owners.claim_file(tag).exists():
            return tag



class FakeRun:
    """The lab objects a run of tag ``tag`` makes: a gateway namespace, a guest namespace with
    its management link, and a process in each (a child of ours, or an orphan)."""

    def __init__(self, tag: str, orphan: bool, processes: bool = True) -> None:
        self.tag = tag
        self.children: list[subprocess.Popen[bytes]] = []
        for ns in (f"tbed-{tag}-gw", f"tbed-{tag}-0"):
            netns.sh("ip", "netns", "add", ns)
            if not processes:
                continue
            if orphan:  # its parent is gone: as after a SIGKILLed run
                subprocess.run(["setsid", "sh", "-c",
                                f"ip netns exec {ns} sleep 300 >/dev/null 2>&1 &"], check=True)
            else:
                self.children.append(subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "300"]))
        netns.sh("ip", "link", "add", f"tb{tag}m0", "type", "veth", "peer", "mgmt0", "netns",
                 f"tbed-{tag}-0")
        deadline = time.monotonic() + 5
        while processes and len(self.pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

    def pids(self) -> list[int]:
        return [p for ns in (f"tbed-{self.tag}-gw", f"tbed-{self.tag}-0") for p in
                netns.pids_in(ns)]

    def claim(self, owner: Owner) -> None:
        owners.STATE_DIR.mkdir(parents=True, exist_ok=True)
        owners.claim_file(self.tag).write_text(json.dumps(owner.to_json() | {"run": "x"}))

    def remove(self) -> None:
        netns.sweep(self.tag)
        for c in self.children:
            c.wait(timeout=10)
        owners.release(self.tag)


@pytest.fixture
def state(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(owners, "STATE_DIR", tmp_path / "state")
    return tmp_path / "state"


@pytest.fixture
def make_run(state) -> Iterator:
    made: list[FakeRun] = []

    def make(orphan: bool, owner: Owner | None = None, processes: bool = True) -> FakeRun:
        run = FakeRun(_tag(), orphan, processes)
        made.append(run)
        if owner is not None:
            run.claim(owner)
        return run

    yield make
    for run in made:
        run.remove()


def _cleanup(tag: str, state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TESTBED, "lab", "cleanup", "--tag", tag, *extra],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, TESTBED_LAB_STATE=str(state)))


CASES = {  # name -> (orphan processes, owner in the claim: "me"/"gone"/None, is it live)
    "a live run with its claim": (False, "me", True),
    "a live run's claim, its processes orphaned": (True, "me", True),
    "a killed run with its claim": (True, "gone", False),
    "a killed run's claim, processes still children": (False, "gone", False),
    "no claim, processes children of a testbed process": (False, None, True),
    "no claim, orphaned processes": (True, None, False),
}


@pytest.mark.parametrize("everything", [False, True], ids=["cleanup", "cleanup --all"])
@pytest.mark.parametrize("name", list(CASES))
def test_cleanup_removes_only_what_is_left_of_runs_that_are_gone(state, make_run, name,
                                                                  everything):
    orphan, who, live = CASES[name]
    owner = {"me": Owner.me(), "gone": gone_owner(), None: None}[who]
    run = make_run(orphan, owner)
    before = run_objects(run.tag)
    assert len(before) == 5, before  # 2 namespaces, 2 processes, 1 link
    out = _cleanup(run.tag, state, *(["--all"] if everything else []))
    assert out.returncode == 0, out.stderr
    if live and not everything:
        assert run_objects(run.tag) == before, "cleanup must not touch a run still going on"
        assert f"kept lab {run.tag}: its run is still going on" in out.stdout
        assert "0 leftover(s) removed, 1 live run(s) left alone" in out.stdout
    else:
        assert run_objects(run.tag) == [], out.stdout
        assert f"removed netns tbed-{run.tag}-gw" in out.stdout
        assert f"removed link tb{run.tag}m0" in out.stdout
        assert not owners.claim_file(run.tag).exists()


def test_an_empty_lab_without_claim_is_a_leftover(state, make_run):
    run = make_run(orphan=False, processes=False)
    out = _cleanup(run.tag, state)
    assert out.returncode == 0 and run_objects(run.tag) == []


def test_claims_of_gone_runs_are_swept_and_live_ones_kept(state):
    live, dead = _tag(), _tag()
    for tag, owner in ((live, Owner.me()), (dead, gone_owner())):
        state.mkdir(parents=True, exist_ok=True)
        owners.claim_file(tag).write_text(json.dumps(owner.to_json()))
    assert owners.sweep_stale_claims() == [dead]
    assert owners.claim_file(live).exists() and not owners.claim_file(dead).exists()


@pytest.mark.parametrize("who", ["me", "gone", None])
def test_a_vagrant_runs_bridge_is_kept_while_its_run_lives(state, who):
    key = secrets.token_hex(3)
    bridge, tag = f"tbx{key}", f"x{key}"
    netns.sh("ip", "link", "add", bridge, "type", "bridge")
    try:
        if who is not None:
            state.mkdir(parents=True, exist_ok=True)
            owner = Owner.me() if who == "me" else gone_owner()
            owners.claim_file(tag).write_text(json.dumps(owner.to_json()))
        out = _cleanup(tag, state)
        assert out.returncode == 0, out.stderr
        exists = Path(f"/sys/class/net/{bridge}").exists()
        assert exists is (who == "me"), out.stdout
    finally:
        netns.sh("ip", "link", "delete", bridge, check=False)


def test_cleanup_marks_the_killed_run_abandoned(state, make_run, tmp_path):
    owner = gone_owner()
    run_dir = tmp_path / "results" / "seed" / "20260101T000000Z-dead"
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps(
        {"status": "running", "process": owner.to_json()}))
    run = make_run(orphan=True)
    state.mkdir(parents=True, exist_ok=True)
    owners.claim_file(run.tag).write_text(json.dumps(owner.to_json() | {"run": str(run_dir)}))
    out = _cleanup(run.tag, state)
    assert out.returncode == 0, out.stderr
    assert f"run {run_dir}: abandoned (its process is gone)" in out.stdout
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "abandoned"
    assert run_objects(run.tag) == []
