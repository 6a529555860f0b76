"""One way to run a lab command: in a namespace or not, bounded in time, a failure a LabError."""

from __future__ import annotations

import subprocess

from testbed._errors import LabError

COMMAND_SECONDS = 30


def sh(*argv: str, ns: str | None = None, check: bool = True, input: str | None = None) -> str:
    """Run a command (in namespace ``ns``); a failure becomes a LabError quoting stderr."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_SECONDS,
                             input=input)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"`{' '.join(cmd)}` failed: {e}") from e
    if check and res.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed: {res.stderr.strip() or res.returncode}")
    return res.stdout
