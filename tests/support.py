"""Builders shared across the test packages: the recorded seed run and copies of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from testbed.run.liveness import Owner

SEED_RUN = Path(__file__).resolve().parent / "data" / "seed-run"


def seed_copy(where: Path) -> Path:
    """A copy of the recorded seed run at ``where/skype-2013-lab/seed-run`` (without the pinned
    expected outputs)."""
    run = where / "skype-2013-lab" / "seed-run"
    shutil.copytree(SEED_RUN, run, ignore=shutil.ignore_patterns("expected"))
    return run


def analysed_seed(factory: pytest.TempPathFactory) -> Path:
    """The seed run copied and analysed once (8 PASS): the earlier results a case starts from."""
    from testbed.cli import main

    run = seed_copy(factory.mktemp("seed"))
    assert main(["analyze", str(run)]) == 0
    return run


def gone_owner() -> Owner:
    """The owner record of a process that existed and ended (its pid, boot and start time
    were real): a run whose process is gone."""
    from testbed.run.liveness import Owner, boot_id, start_ticks

    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    owner = Owner(pid=p.pid, boot_id=boot_id(), start=start_ticks(p.pid))
    p.kill()
    p.wait()
    return owner
