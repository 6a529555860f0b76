"""The lab when things go wrong: a killed run, Ctrl-C, a client that cannot sign in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    ROOT,
    TESTBED,
    copy_scenarios,
    needs_root,
    processes_mentioning,
    run_dirs,
    run_objects,
    run_tag,
    wait_for_phase,
)

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root]


def _start(results: Path, scenario: str = "scenarios/skype-2013-lab.yaml",
           cwd: Path = ROOT) -> subprocess.Popen[str]:
    return subprocess.Popen([*TESTBED, "run", scenario, "--results", str(results)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_guests(results: Path) -> Path:
    run = wait_for_phase(results, "sessions")
    assert run_objects(run_tag(run)), "the lab should be up while sessions run"
    return run


def _cleanup(tag: str) -> subprocess.CompletedProcess[str]:
    """``testbed lab cleanup``, for this run's tag only (other lab runs may go on beside)."""
    return subprocess.run([*TESTBED, "lab", "cleanup", "--tag", tag], capture_output=True,
                          text=True, timeout=120)


def test_sigkill_then_lab_cleanup_leaves_nothing(tmp_path):
    proc = _start(tmp_path)
    run = _wait_for_guests(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    tag = run_tag(run)
    left = run_objects(tag)
    assert left, "SIGKILL leaves the lab behind"
    print(f"after SIGKILL: {len(left)} objects of the run")
    out = _cleanup(tag)
    assert out.returncode == 0, out.stderr
    assert "removed netns tbed-" + tag + "-gw" in out.stdout
    assert f"run {run}: abandoned (its process is gone)" in out.stdout
    assert run_objects(tag) == []
    assert processes_mentioning(str(run)) == []
    # the crashed run stays readable, and reads as abandoned (never "running")
    from testbed.history.diff import load_run

    assert json.loads((run / "manifest.json").read_text())["status"] == "abandoned"
    assert load_run(run).status == "abandoned"


@pytest.mark.parametrize("count", [1, 3])
def test_ctrl_c_tears_down_and_keeps_results(tmp_path, count):
    proc = _start(tmp_path)
    run = _wait_for_guests(tmp_path)
    time.sleep(3)  # into the sessions' long steps
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    if count > 1:  # the second and third come while the lab comes down (under a second)
        wait_for_phase(tmp_path, "capture-stop", timeout=30, every=0.01)
        for _ in range(count - 1):
            assert proc.poll() is None, "the run ended before the lab came down"
            proc.send_signal(signal.SIGINT)
            time.sleep(0.05)
    _, err = proc.communicate(timeout=60)
    print(f"{count} Ctrl-C: {time.monotonic() - t0:.1f} s to exit")
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.count("still tearing the lab down") == count - 1
    assert err.strip().splitlines()[-1].startswith("testbed: interrupted; the lab was torn down")
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "interrupted"
    assert m["phases"]["teardown"]["status"] == "ok"
    assert m["capture"]["complete"]
    assert run_objects(run_tag(run)) == []
    assert processes_mentioning(str(run)) == []


def test_cleanup_beside_a_healthy_run_leaves_it_alone(tmp_path):
    proc = _start(tmp_path)
    run = _wait_for_guests(tmp_path)
    tag = run_tag(run)
    before = run_objects(tag)
    out = _cleanup(tag)
    assert out.returncode == 0, out.stderr
    assert f"kept lab {tag}: its run is still going on" in out.stdout
    assert [o for o in before if o.startswith(("netns", "link"))] == [
        o for o in run_objects(tag) if o.startswith(("netns", "link"))]
    stdout, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout + err
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "complete"
    assert all(v["status"] == "pass" for v in _verdicts(run).values())
    assert run_objects(tag) == []


def test_failed_sign_in_makes_the_negative_claim_inconclusive(tmp_path):
    scenarios = copy_scenarios(tmp_path)
    build = scenarios / "lab" / "builds" / "regular.yaml"
    data = yaml.safe_load(build.read_text())
    data["chat"]["relay"] = "https://relay.nowhere.lab.example:443/chat"  # NXDOMAIN
    build.write_text(yaml.safe_dump(data))
    app = scenarios / "apps" / "refclient.yaml"
    app.write_text(app.read_text().replace("{wait_image: status-online.png, timeout: 30}",
                                           "{wait_image: status-online.png, timeout: 10}"))
    scenario = scenarios / "skype-2013-lab.yaml"
    data = yaml.safe_load(scenario.read_text())
    data["sessions"] = data["sessions"][:2]  # launch and login are enough here
    scenario.write_text(yaml.safe_dump(data, allow_unicode=True))
    results = tmp_path / "results"
    proc = _start(results, str(scenario), cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err
    (run,) = run_dirs(results)
    verdicts = _verdicts(run)
    regular = verdicts["regular-never_reaches-country-CN"]
    assert regular["status"] == "inconclusive"
    assert "login failed" in regular["reason"]
    assert verdicts["tom-en-reaches-country-CN"]["status"] == "pass"
    assert (run / "screenshots" / "regular" / "login-failure.png").exists()
    assert "INCONCLUSIVE" in out


def _verdicts(run: Path) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in json.loads((run / "verdicts.json").read_text())["verdicts"]}


def _kill_client(tag: str, index: int) -> None:
    for pid in subprocess.run(["ip", "netns", "pids", f"tbed-{tag}-{index}"],
                              capture_output=True, text=True).stdout.split():
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"testbed.lab.refclient" in cmd:
            os.kill(int(pid), signal.SIGKILL)
            return
    raise AssertionError("no client process to kill")


def test_client_killed_mid_chat_makes_its_verdict_inconclusive(tmp_path):
    proc = _start(tmp_path)
    run = wait_for_phase(tmp_path, "sessions")
    tag = json.loads((run / "manifest.json").read_text())["lab"]["tag"]
    deadline = time.monotonic() + 120
    while True:  # the control peer's client dies once the chat with the TOM user is over
        events = (run / "events.jsonl").read_text() if (run / "events.jsonl").exists() else ""
        if events.count('"session": "chat-tom"') >= 4:
            break
        assert time.monotonic() < deadline and proc.poll() is None, events[-2000:]
        time.sleep(0.05)
    _kill_client(tag, 3)  # control is the fourth client
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err
    verdicts = _verdicts(run)
    control = verdicts["control-never_reaches-country-CN"]
    assert control["status"] == "inconclusive"
    assert "chat_wait failed" in control["reason"]
    assert verdicts["regular-never_reaches-country-CN"]["status"] == "pass"
    assert (run / "screenshots" / "control" / "chat_wait-failure.png").exists()
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
    assert run_objects(tag) == []
    assert processes_mentioning(str(run)) == []
