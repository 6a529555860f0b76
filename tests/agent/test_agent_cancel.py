"""``POST /cancel``: an interrupted run tells each agent to stop the steps it is running (and
those waiting); they end at the next step as ``cancelled``, and the agent stays up for what
comes next. The real agent on loopback, steps that need no display (sleep)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from testbed._errors import AgentError
from testbed.agent.client import AgentClient

STEP = {"sleep": 0.2}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def agent(tmp_path) -> Iterator[AgentClient]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"} | {
        "TESTBED_AGENT_TOKEN": "tok-cancel", "HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "testbed.agent", "--listen",
                             f"127.0.0.1:{port}", "--workdir", str(tmp_path)], env=env,
                            stderr=subprocess.DEVNULL)
    client = AgentClient(f"http://127.0.0.1:{port}", "tok-cancel", timeout=60)
    client.wait_ready()
    yield client
    proc.terminate()
    proc.wait(timeout=10)


def _in_background(client: AgentClient, steps: int) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def go() -> None:
        t0 = time.monotonic()
        out["answer"] = client.run_steps([STEP] * steps, {})
        out["seconds"] = time.monotonic() - t0

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, out


@pytest.mark.parametrize("requests", [1, 2, 4])
def test_cancel_stops_running_and_waiting_steps_at_the_next_step(agent, requests):
    runs = [_in_background(agent, 50) for _ in range(requests)]  # 10 s each, one at a time
    time.sleep(0.5)
    agent.cancel()
    for t, out in runs:
        t.join(timeout=5)
        assert not t.is_alive(), "a cancelled request must answer at once"
        answer = out["answer"]
        assert answer["ok"] is False and answer["error"] == "cancelled"
        assert len(answer["results"]) < 50
        assert out["seconds"] < 3
    after = agent.run_steps([STEP] * 2, {})  # the agent stays up, later steps run
    assert after["ok"] and len(after["results"]) == 2


def test_cancel_with_nothing_running_changes_nothing(agent):
    agent.cancel()
    answer = agent.run_steps([STEP] * 3, {})
    assert answer["ok"] and [r["outcome"] for r in answer["results"]] == ["slept"] * 3


def test_cancel_needs_the_token(agent):
    t, out = _in_background(agent, 10)
    stranger = AgentClient(agent.url, "wrong-token")
    with pytest.raises(AgentError, match="401"):
        stranger.cancel()
    t.join(timeout=10)
    assert out["answer"]["ok"] and len(out["answer"]["results"]) == 10
