"""Shared builders for tests that run the orchestrator on the in-tree fakes (a fake gateway,
guest pool and agents): the seed scenario, fast timeouts, the fakes of one run kept for the
test to look at, and readers of what the run left (manifest, events)."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testbed.orchestrator.backend import Timeouts
from testbed.orchestrator.run import run_scenario
from testbed.provider import Context, Gateway, PoolKind
from testbed.provider.fakes import FakeAgent, FakeGateway, FakePool, action_of, done
from testbed.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scenarios" / "skype-2013-lab.yaml"
FAST = Timeouts(network=5, capture=10, guest=2, action=2, unwind=1)
PHASES = ["network", "capture-start", "guests", "sessions", "capture-stop", "teardown",
          "analyze", "verdicts", "report"]


class Roles:
    """The fakes of one run, kept for the test to look at once the run is over."""

    def __init__(self, agents: dict[str, FakeAgent] | None = None, **pool: Any) -> None:
        self.agents, self.options = agents or {}, pool
        self.gateway: FakeGateway | None = None
        self.pool: FakePool | None = None

    def kind(self) -> PoolKind:
        return PoolKind(make=self._pool, gateway=self._gateway)

    def _gateway(self, run: Path, internet: Any) -> Gateway:
        self.gateway = FakeGateway(run, internet)
        return self.gateway

    def _pool(self, ctx: Context, gateway: Gateway) -> FakePool:
        self.pool = FakePool(gateway, self.agents, **self.options)
        return self.pool

    def torn_down(self) -> bool:
        assert self.gateway is not None and self.pool is not None
        return (self.pool.teardowns == 1 and not self.pool.running
                and self.gateway.teardowns == 1
                and all(p.poll() is not None for p in self.gateway.procs))


def run(tmp_path: Path, roles: Roles, timeouts: Timeouts = FAST) -> Any:
    return run_scenario(load_scenario(SEED), tmp_path / "results", progress=lambda m: None,
                        state_dir=tmp_path / "ca", kind=roles.kind(), timeouts=timeouts)


def manifest(outcome: Any) -> dict[str, Any]:
    return dict(json.loads((outcome.run.path / "manifest.json").read_text()))


def events(outcome: Any) -> list[dict[str, Any]]:
    return [e.to_json() for e in outcome.run.events()]  # as events.jsonl says it


def by_action(outcome: Any, variant: str, action: str) -> list[dict[str, Any]]:
    return [e for e in events(outcome) if e["variant"] == variant and e["action"] == action]


def on(variant: str, action: str, answer: Any) -> Any:
    """A handler that answers ``answer(steps)`` for one action, and does the rest."""
    def handler(steps: list[dict[str, Any]]) -> dict[str, Any]:
        return answer(steps) if action_of(steps) == action else done(steps)
    return FakeAgent(variant, handler)


class FullDisk:
    """The results folder's disk fills up: from the moment ``trigger`` says so, every write
    under ``root`` fails with ENOSPC (``transient``: only the first one, as when space is
    freed at once). ``trigger`` sees each event: ``("progress", line)`` and
    ``("write", path relative to root)``, before the write. As a real disk, it is one for
    every process: its state is kept in files, so a forked child (the analysis's scans)
    fills it and finds it full as this process does."""

    def __init__(self, root: Path, trigger: Callable[[str, str], bool],
                 transient: bool = False) -> None:
        self.root, self.trigger, self.transient = root, trigger, transient
        self._state = Path(tempfile.mkdtemp(prefix="fulldisk-"))
        weakref.finalize(self, shutil.rmtree, self._state, True)
        self._open = io.open  # the real one: the state is written however open is patched

    @property
    def full(self) -> bool:
        return (self._state / "full").exists()

    def _fill(self) -> None:
        self._open(self._state / "full", "w").close()

    @property
    def failed(self) -> list[str]:
        log = self._state / "failed"
        return log.read_text().splitlines() if log.exists() else []

    def progress(self, line: str) -> None:
        if not self.full and self.trigger("progress", line):
            self._fill()

    def _check(self, path: Any, writing: bool) -> None:
        if not writing:
            return
        p = Path(os.fsdecode(path)) if not isinstance(path, int) else None
        if p is None or not p.is_absolute() or not p.is_relative_to(self.root):
            return
        rel = str(p.relative_to(self.root))
        if not self.full and self.trigger("write", rel):
            self._fill()
        if self.full and (not self.transient or not self.failed):
            with self._open(self._state / "failed", "a") as log:
                log.write(rel + "\n")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(p))

    def install(self, monkeypatch: Any) -> None:
        real_open, real_os_open = io.open, os.open

        def fake_open(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
            self._check(file, any(c in mode for c in "wax+"))
            return real_open(file, mode, *args, **kw)

        def fake_os_open(path: Any, flags: int, *args: Any, **kw: Any) -> int:
            self._check(path, bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)))
            return real_os_open(path, flags, *args, **kw)

        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(io, "open", fake_open)
        monkeypatch.setattr(os, "open", fake_os_open)


def blocking_agent(variant: str, action: str, started: Path | None = None,
                   seconds: float = 60.0) -> FakeAgent:
    """An agent whose ``action`` is a long step: it runs ``seconds`` unless the agent is
    told to stop (``cancel``); ``started`` is touched when it begins."""
    agent: FakeAgent

    def long_step(steps: list[dict[str, Any]]) -> dict[str, Any]:
        if started is not None:
            started.touch()
        if agent.cancelled.wait(seconds):
            return {"ok": False, "error": "cancelled", "results": [], "screenshots": {}}
        return done(steps)

    agent = on(variant, action, long_step)
    return agent
