"""The agent for real: Xvfb, pyautogui, the reference client, HTTP with a token — on loopback.

The client's build profile here contacts nothing at launch, and its relay is a closed
loopback port, so no packet leaves the machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from testbed._errors import AgentError
from testbed.agent.client import AgentClient

from .xdisplay import xvfb

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "scenarios" / "apps" / "refclient"

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb (make setup)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def agent(tmp_path):
    with xvfb() as display:
        (tmp_path / ".Xauthority").touch()
        build = tmp_path / "build.yaml"
        build.write_text("build: test\nproduct: Skype\nversion: '1.0'\nlanguage: en\n"
                         "title: Skype\nlaunch: []\nlogin: []\nchat:\n"
                         "  relay: https://127.0.0.1:9/chat\n")
        port = _free_port()
        env = dict(os.environ, DISPLAY=f":{display}", HOME=str(tmp_path),
                   XDG_SESSION_TYPE="x11", TESTBED_AGENT_TOKEN="tok-123")
        proc = subprocess.Popen([sys.executable, "-m", "testbed.agent", "--listen",
                                 f"127.0.0.1:{port}", "--workdir", str(tmp_path)], env=env,
                                stderr=subprocess.DEVNULL)
        client = AgentClient(f"http://127.0.0.1:{port}", "tok-123", timeout=60)
        client.wait_ready()
        yield client, build, port
        proc.terminate()
        proc.wait(timeout=10)


def test_steps_drive_the_gui_and_return_screenshots(agent):
    client, build, _ = agent
    assert client.health()["screen"] == [1024, 768]
    images = {n: IMAGES / n for n in ("signin-button.png", "label-user.png", "label-password.png",
                                      "status-online.png")}
    answer = client.run_steps([
        {"run": [sys.executable, "-m", "testbed.lab.refclient", "--build", str(build)]},
        {"wait_image": "signin-button.png", "timeout": 20},
        {"click_image": "label-user.png", "offset": [170, 0]},
        {"type": "alice"},
        {"click_image": "label-password.png", "offset": [170, 0]},
        {"type": "hunter2-secret", "secret": True},
        {"screenshot": "filled"},
    ], images)
    assert answer["ok"], answer["error"]
    assert answer["screenshots"]["filled"][:8] == b"\x89PNG\r\n\x1a\n"
    described = [r["step"] for r in answer["results"]]
    assert "type <secret>" in described
    assert not any("hunter2" in d for d in described)
    # sign in: the relay is a closed port, so the client must not show "Online"
    answer = client.run_steps([{"click_image": "signin-button.png"},
                               {"wait_image": "status-online.png", "timeout": 2}], images)
    assert not answer["ok"]
    assert "status-online.png not found on screen within 2 s" in answer["error"]
    assert answer["screenshots"]["failure"][:4] == b"\x89PNG"


def test_a_missing_reference_image_is_a_clear_failure(agent):
    client, _, _ = agent
    answer = client.run_steps([{"wait_image": "nothing.png", "timeout": 0.1}], {})
    assert not answer["ok"] and "no reference image 'nothing.png'" in answer["error"]


def test_requests_without_the_token_are_refused(agent):
    _, _, port = agent
    with pytest.raises(AgentError, match="401"):
        AgentClient(f"http://127.0.0.1:{port}", "wrong").health()


def test_unreachable_agent_is_an_agent_error():
    with pytest.raises(AgentError, match="unreachable"):
        AgentClient(f"http://127.0.0.1:{_free_port()}", "t", timeout=2).health()
