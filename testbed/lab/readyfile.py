"""Waiting for a program that was just started to say it is ready by creating a file (a
socket, a pid file), while watching that it is still running. Standard library only:
``testbed.lab.guestinit`` uses it inside a guest's sandbox."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from testbed._errors import LabError

POLL = 0.05  # seconds between looks


def wait_for(path: Path, proc: subprocess.Popen[bytes], what: str, timeout: float = 20) -> None:
    """Return once ``path`` exists; LabError when ``proc`` exits first or ``timeout`` seconds
    pass."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise LabError(f"{what} exited with status {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise LabError(f"{what} was not ready after {timeout:g} s")
        time.sleep(POLL)
