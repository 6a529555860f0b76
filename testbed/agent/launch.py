"""The agent's launcher in a VM's desktop session: imported before the run, served at once.

    python -m testbed.agent.launch ENVFILE --workdir DIR

Started by the session's autostart (the box's ``testbed-session-agent``), before the clean
snapshot is taken. It imports the agent and what its steps use (Pillow, numpy, pyautogui:
seconds under software emulation), then waits for ``ENVFILE`` — this run's token and listen
address, ``KEY=VALUE`` lines, written by the per-run set-up after a snapshot restore —
removes it and serves. So a restored guest's agent answers as soon as its environment is
there, without a Python start-up in between. Standard library and the agent only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

POLL = 0.05
READY = "testbed-agent-waiting"  # in ~/.cache while imported and waiting: the snapshot's cue


def read_env(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (blank lines and ``#`` comments skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def wait_for(path: Path, poll: float = POLL) -> dict[str, str]:
    """The environment in ``path`` once it is there and complete (it is renamed into place),
    the file removed."""
    while not path.is_file():
        time.sleep(poll)
    env = read_env(path)
    path.unlink()
    return env


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="testbed-agent-launch")
    p.add_argument("envfile", type=Path)
    p.add_argument("--workdir", required=True)
    args = p.parse_args(argv)
    from testbed.agent import server, steps  # the imports a restored guest should not wait for

    try:  # pyautogui and numpy too, where they import (they need DISPLAY)
        steps._gui()
        import numpy  # noqa: F401
    except Exception as e:  # reported now; the steps that need them will fail with it
        print(f"testbed-agent-launch: {type(e).__name__}: {e}", file=sys.stderr)
    cue = Path.home() / ".cache" / READY
    cue.parent.mkdir(parents=True, exist_ok=True)
    cue.write_text(str(os.getpid()))
    try:
        env = wait_for(args.envfile)
    finally:
        cue.unlink(missing_ok=True)
    listen = env.pop("AGENT_LISTEN", "")
    if not listen:
        print(f"testbed-agent-launch: {args.envfile} has no AGENT_LISTEN", file=sys.stderr)
        return 2
    os.environ.update(env)  # the token: read_token takes it out again
    return server.main(["--listen", listen, "--workdir", args.workdir])


if __name__ == "__main__":
    sys.exit(main())
