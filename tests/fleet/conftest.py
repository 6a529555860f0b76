"""A real Redis broker on loopback (Debian's redis-server, AOF on, fsync always) and real
``testbed worker`` processes, each in its own process group with its own results folder. The
fixtures stop them on success, failure and Ctrl-C (and at exit, should a finalizer not run)."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
_LIVE: set[int] = set()  # process groups to stop at exit whatever happens


def _stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process's group, wait for the process, then SIGKILL what is left of the
    group (children it left behind)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _LIVE.discard(proc.pid)


@atexit.register
def _stop_all() -> None:
    for pgid in list(_LIVE):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    port: int
    folder: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server")
        assert server, "redis-server is missing (make system installs it)"
        self.proc = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--protected-mode", "yes", "--logfile", str(self.folder / "redis.log")],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _LIVE.add(self.proc.pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server did not listen on port {self.port} within 10 s")

    def kill(self) -> None:
        """SIGKILL: no final save; what survives is what AOF had fsynced."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        _LIVE.discard(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    folder = tmp_path / "redis"
    folder.mkdir()
    b = Broker(_free_port(), folder)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@dataclass
class WorkerProc:
    name: str
    results: Path
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    logs: list[str] = field(default_factory=list)

    def start(self) -> WorkerProc:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
        _LIVE.add(self.proc.pid)
        return self

    def sigkill(self, group: bool = True) -> None:
        """The worker dies at once (its process group with it: what a host losing power
        does to a worker and its fake tools; the lab's namespaces stay behind)."""
        assert self.proc is not None
        if group:
            os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            self.proc.kill()
        self.proc.wait()
        _LIVE.discard(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def workers(tmp_path: Path, broker: Broker) -> Iterator[Callable[..., WorkerProc]]:
    made: list[WorkerProc] = []

    def start(name: str, *extra: str, runner: str | None = "tests.fleet.runners:fake",
              env: dict[str, str] | None = None) -> WorkerProc:
        results = tmp_path / f"worker-{name}"
        argv = [sys.executable, "-m", "testbed", "worker", "--broker", broker.url,
                "--results", str(results), "--name", name, "--scenarios-root",
                str(ROOT / "scenarios"), "--heartbeat", "0.5", "--recheck", "1",
                "--visibility", "20", *extra]
        if runner:
            argv += ["--runner", runner]
        e = os.environ | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"} | (env or {})
        w = WorkerProc(name, results, argv, e, tmp_path / f"worker-{name}.log").start()
        made.append(w)
        return w

    try:
        yield start
    finally:
        for w in made:
            w.stop()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0,
             poll: float = 0.2) -> Any:
    """Poll ``check`` until it returns something true; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")
