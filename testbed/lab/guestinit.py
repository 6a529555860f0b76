"""A lab guest's desktop session, started inside its sandbox (``testbed.lab.sandbox``):
Xvfb, a session D-Bus (where ``dbus-daemon`` is installed), then the agent.

    python -m testbed.lab.guestinit --screen WxHxD --listen IP:PORT  < token

The agent's token comes on standard input and goes on to the agent through a pipe: it is
never in an environment, a command line or a file. On SIGTERM the session stops its programs
(the agent first) and exits. Standard library only (and ``testbed.lab.readyfile``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from testbed._errors import LabError
from testbed.lab import readyfile

READY_SECONDS = 20.0


def wait_for(path: Path, proc: subprocess.Popen[bytes], what: str) -> None:
    try:
        readyfile.wait_for(path, proc, what, READY_SECONDS)
    except LabError as e:
        raise SystemExit(f"guest session: {e}") from e


def main(argv: list[str] | None = None) -> int:
    t0 = time.monotonic()

    def note(what: str) -> None:  # into the session's log: how long the start took, part by part
        print(f"guest session: {what} after {time.monotonic() - t0:.2f} s", flush=True)

    p = argparse.ArgumentParser(prog="testbed-guest-session")
    p.add_argument("--screen", required=True)
    p.add_argument("--listen", required=True)
    args = p.parse_args(argv)
    token = sys.stdin.readline().strip()
    os.close(0)
    os.open(os.devnull, os.O_RDONLY)  # fd 0 again, now /dev/null
    os.chdir(os.environ["HOME"])  # (the sandbox starts in /: root may not enter the home)
    display = os.environ["DISPLAY"]
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    children: list[subprocess.Popen[bytes]] = []
    running: list[subprocess.Popen[bytes]] = []  # the agent, once started
    stopped: list[bool] = []
    secret = [token]  # handed on, then gone from this frame too
    del token

    def stop(*_: object) -> None:
        stopped.append(True)
        # Signals only: this handler may interrupt the main thread inside ``agent.wait()``,
        # which holds that child's wait lock — a wait here would spin until its timeout.
        for child in reversed(children):  # the agent first: it stops the app it started
            if child.poll() is None:
                child.terminate()
        if not running:  # still starting: the ``finally`` below waits for what did start
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        code = _session(args, secret, display, tmp, children, running, note)
        return 0 if stopped else code
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in reversed(children):
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _session(args: argparse.Namespace, secret: list[str], display: str, tmp: Path,
             children: list[subprocess.Popen[bytes]], running: list[subprocess.Popen[bytes]],
             note: Callable[[str], None]) -> int:
    """Xvfb, the session bus, then the agent; returns the agent's exit status."""
    number = display.lstrip(":")
    for stale in (tmp / f".X{number}-lock", tmp / ".X11-unix" / f"X{number}"):
        stale.unlink(missing_ok=True)  # a private /tmp: whatever is there is from before
    with (tmp / "xvfb.log").open("ab") as log:
        x = subprocess.Popen(["Xvfb", display, "-screen", "0", args.screen, "-nolisten", "tcp",
                              "-noreset"], stdout=log, stderr=subprocess.STDOUT)
    children.append(x)
    wait_for(tmp / ".X11-unix" / f"X{number}", x, f"Xvfb {display}")
    note(f"Xvfb {display} ready")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and shutil.which("dbus-daemon"):
        bus = Path(runtime) / "bus"
        with (tmp / "dbus.log").open("ab") as log:
            d = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                                  f"--address=unix:path={bus}"], stdout=log,
                                 stderr=subprocess.STDOUT)
        children.append(d)
        wait_for(bus, d, "the session D-Bus")
        note("the session D-Bus ready")
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={bus}"
    read, write = os.pipe()
    os.write(write, secret.pop().encode() + b"\n")
    os.close(write)
    agent = subprocess.Popen([sys.executable, "-m", "testbed.agent", "--listen", args.listen,
                              "--workdir", os.environ["HOME"], "--token-fd", str(read)],
                             pass_fds=(read,), stdin=subprocess.DEVNULL)
    os.close(read)
    children.append(agent)
    running.append(agent)
    note("the agent started")
    return agent.wait()

if __name__ == "__main__":
    sys.exit(main())
