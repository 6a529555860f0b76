"""A capture process on the gateway: started when its log says it listens, stopped with
SIGTERM so it writes its file to the end (never SIGKILL first: tcpdump's statistics and
mitmdump's flow file are only complete after a clean exit)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from testbed._errors import CaptureError


def await_ready(proc: subprocess.Popen[bytes], log: Path, ready: str, name: str,
                timeout: float, poll: float = 0.1) -> None:
    """Wait until ``log`` contains ``ready``; CaptureError (with the log's end) when the
    process exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            raise CaptureError(f"{name} exited ({proc.returncode}): "
                               f"{log.read_text(errors='replace').strip()[-500:]}")
        if time.monotonic() > deadline:
            raise CaptureError(f"{name} did not start within {timeout:g} s")
        time.sleep(poll)


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; True when it ended by itself."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False
