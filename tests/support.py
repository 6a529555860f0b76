"""Builders shared across the test packages: the recorded seed run and copies of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
