"""A private Xvfb display for the agent's tests (shared by them)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def xvfb(size: str = "1024x768x24", first: int = 150) -> Iterator[int]:
    """A running Xvfb on the first free display number from ``first``; stopped after."""
    display = first
    while Path(f"/tmp/.X{display}-lock").exists():
        display += 1
    proc = subprocess.Popen(["Xvfb", f":{display}", "-screen", "0", size, "-nolisten", "tcp"],
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{display}").exists():
            assert time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        yield display
    finally:
        proc.terminate()
        proc.wait(timeout=10)
