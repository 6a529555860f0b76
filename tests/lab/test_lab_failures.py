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
    lab_state,
    needs_root,
    processes_mentioning,
    run_dirs,
    wait_for_phase,
    xvfb_count,
)

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root]


def _start(results: Path, scenario: str = "scenarios/skype-2013-lab.yaml",
           cwd: Path = ROOT) -> subprocess.Popen[str]:
    return subprocess.Popen([*TESTBED, "run", scenario, "--results", str(results)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_guests(results: Path) -> Path:
    run = wait_for_phase(results, "sessions")
    assert lab_state()["netns"], "the lab should be up while sessions run"
    return run


def test_sigkill_then_lab_cleanup_leaves_nothing(tmp_path):
    before, xvfb_before = lab_state(), xvfb_count()
    proc = _start(tmp_path)
    run = _wait_for_guests(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    tag = json.loads((run / "manifest.json").read_text())["lab"]["tag"]
    assert any(tag in ns for ns in lab_state()["netns"]), "SIGKILL leaves the lab behind"
    out = subprocess.run([*TESTBED, "lab", "cleanup"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "removed netns tbed-" + tag in out.stdout
    assert lab_state() == before
    assert xvfb_count() == xvfb_before
    assert processes_mentioning(str(run)) == []
    # the crashed run stays readable
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"


def test_ctrl_c_tears_down_and_keeps_results(tmp_path):
    before, xvfb_before = lab_state(), xvfb_count()
    proc = _start(tmp_path)
    run = _wait_for_guests(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "interrupted"
    assert m["phases"]["teardown"]["status"] == "ok"
    assert m["capture"]["complete"]
    assert lab_state() == before
    assert xvfb_count() == xvfb_before
    assert processes_mentioning(str(run)) == []


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
    before, xvfb_before = lab_state(), xvfb_count()
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
    assert lab_state() == before
    assert xvfb_count() == xvfb_before
    assert processes_mentioning(str(run)) == []
