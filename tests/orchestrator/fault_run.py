"""A run of the seed scenario on the fakes, as its own process (for the tests that signal or
kill it): ``python -m tests.orchestrator.fault_run RESULTS VARIANT ACTION STARTED``. The
variant's action is a long step (60 s unless cancelled)."""

from __future__ import annotations

import sys
from pathlib import Path

from testbed import cli
from testbed.provider import POOLS

from .support import SEED, Roles, blocking_agent

if __name__ == "__main__":
    results, variant, action, started = sys.argv[1:5]
    roles = Roles({variant: blocking_agent(variant, action, Path(started))})
    POOLS["lab"] = roles.kind()
    sys.exit(cli.main(["run", str(SEED), "--results", results]))
