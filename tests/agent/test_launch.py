"""The agent's launcher in a VM's session: imported first, then served once the run's
environment is there (a real agent process, here on loopback)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from testbed.agent import launch
from testbed.agent.client import AgentClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("text,expected", [
    ("A=1\nB=2\n", {"A": "1", "B": "2"}),
    ("# comment\n\nTOKEN=a=b\n", {"TOKEN": "a=b"}),
    ("  K = v  \nnot a pair\n", {"K": "v"}),
    ("", {}),
])
def test_the_environment_file_is_read_as_key_value_lines(tmp_path, text, expected):
    f = tmp_path / "agent.env"
    f.write_text(text)
    assert launch.read_env(f) == expected


def test_the_file_is_waited_for_and_removed(tmp_path):
    import threading

    f = tmp_path / "agent.env"
    threading.Timer(0.3, lambda: f.write_text("X=1\n")).start()
    t0 = time.monotonic()
    assert launch.wait_for(f, poll=0.02) == {"X": "1"}
    assert 0.25 < time.monotonic() - t0 < 5
    assert not f.exists()


@pytest.mark.parametrize("listen", [True, False])
def test_the_launcher_waits_imported_then_serves_with_the_runs_token(tmp_path, listen):
    home, envfile = tmp_path / "home", tmp_path / "agent.env"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, "-m", "testbed.agent.launch", str(envfile),
                             "--workdir", str(tmp_path / "work")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        cue = home / ".cache" / launch.READY
        for _ in range(300):
            if cue.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert cue.read_text() == str(proc.pid), "the launcher did not say it was waiting"
        port = free_port()
        tmp = tmp_path / "agent.env.tmp"
        tmp.write_text("TESTBED_AGENT_TOKEN=tok-123\n"
                       + (f"AGENT_LISTEN=127.0.0.1:{port}\n" if listen else ""))
        tmp.rename(envfile)
        if not listen:
            assert proc.wait(timeout=30) == 2
            assert b"has no AGENT_LISTEN" in (proc.stdout.read() if proc.stdout else b"")
            return
        client = AgentClient(f"http://127.0.0.1:{port}", "tok-123")
        client.wait_ready(timeout=30)
        assert client.health()["ok"]
        assert not envfile.exists() and not cue.exists()
        with pytest.raises(Exception, match=r"token|401"):
            AgentClient(f"http://127.0.0.1:{port}", "wrong").health()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
