"""Run functions for workers under test (``testbed worker --runner tests.fleet.runners:fake``):
the real orchestrator on the in-tree fakes (no root, no lab), each run taking at least
``$FLEET_FAKE_SECONDS`` (default 2) in its sessions, so a test can kill a worker mid-run."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from testbed.orchestrator.run import run_scenario
from testbed.provider.fakes import FakeAgent, action_of, done
from tests.orchestrator.support import FAST, Roles


def _slow(steps: list[dict[str, Any]]) -> dict[str, Any]:
    if action_of(steps) == "login":
        time.sleep(float(os.environ.get("FLEET_FAKE_SECONDS", "2")))
    return done(steps)


def fake(scenario: Any, results: Path, progress: Any) -> Path:
    agents = {v: FakeAgent(v, _slow) for v in scenario.clients}
    state = results / ".fleet" / "ca"
    outcome = run_scenario(scenario, results, progress=progress, state_dir=state,
                           kind=Roles(agents).kind(), timeouts=FAST)
    return Path(outcome.run.path)
