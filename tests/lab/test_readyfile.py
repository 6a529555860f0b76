"""Waiting for a started program's ready file: it appears, the program dies first, or time
runs out; each ending is one sentence naming the program."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testbed._errors import LabError
from testbed.lab import guestinit, netns, readyfile


def _start(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_returns_once_the_file_exists(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    proc = _start(f"import pathlib, time; time.sleep(0.2); pathlib.Path({str(ready)!r}).touch(); "
                  "time.sleep(5)")
    try:
        readyfile.wait_for(ready, proc, "the toy server", timeout=10)
        assert ready.exists()
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(("code", "timeout", "message"), [
    ("raise SystemExit(3)", 10, "the toy server exited with status 3 before it was ready"),
    ("import time; time.sleep(5)", 0.3, "the toy server was not ready after 0.3 s"),
])
def test_says_why_it_stopped_waiting(tmp_path: Path, code: str, timeout: float,
                                     message: str) -> None:
    proc = _start(code)
    try:
        with pytest.raises(LabError) as e:
            readyfile.wait_for(tmp_path / "never", proc, "the toy server", timeout=timeout)
        assert str(e.value) == message
    finally:
        proc.kill()
        proc.wait()


def test_the_lab_and_the_guest_session_share_it(tmp_path: Path) -> None:
    assert netns.wait_for is readyfile.wait_for
    proc = _start("raise SystemExit(1)")
    proc.wait()
    with pytest.raises(SystemExit) as e:
        guestinit.wait_for(tmp_path / "never", proc, "Xvfb :99")
    assert str(e.value) == "guest session: Xvfb :99 exited with status 1 before it was ready"
