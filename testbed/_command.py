"""One way to run a helper program: bounded in time, its output as text, a failure one error
of the caller's kind quoting what the program said."""

from __future__ import annotations

import subprocess


def run(cmd: list[str], error: type[Exception], timeout: float, check: bool = True,
        input: str | None = None, label: str | None = None) -> str:
    """``cmd``'s standard output; it failing to start, outliving ``timeout`` or (with
    ``check``) exiting non-zero raises ``error("`label` failed: …")``."""
    label = label or " ".join(cmd)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise error(f"`{label}` failed: {e}") from e
    if check and res.returncode != 0:
        said = res.stderr.strip() or res.stdout.strip() or f"exit status {res.returncode}"
        raise error(f"`{label}` failed: {said}")
    return res.stdout
