"""Shared by the input-file tests: a copy of scenarios/ to break, and the CLI as a user sees
it (in this process, the providers replaced by the in-tree fakes for `run`)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.scenario.fuzzing import SEED_TREE, Outcome, cli_outcome, fake_pools


@pytest.fixture
def seed_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of scenarios/ in a fresh working directory; returns the copy."""
    shutil.copytree(SEED_TREE, tmp_path / "scenarios")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "scenarios"


def change(file: Path, edit: Callable[[Any], Any]) -> None:
    """Rewrite a YAML file after ``edit(data)`` (which changes data in place)."""
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    edit(data)
    file.write_text(yaml.safe_dump(data, allow_unicode=True,
                                   sort_keys=False, width=10_000), encoding="utf-8")


def validate(*paths: Path | str) -> Outcome:
    return cli_outcome(["validate", *map(str, paths)])


def run(scenario: Path, results: Path, *extra: str) -> Outcome:
    with fake_pools():
        return cli_outcome(["run", str(scenario), "--results", str(results), *extra])


def assert_refused(outcome: Outcome, *words: str) -> None:
    """Exit 2, every line ``FILE:LINE: ...``, the first problem naming ``words``."""
    assert outcome.verdict == "rejected", f"expected a FILE:LINE refusal, got {outcome}"
    for word in words:
        assert word in outcome.detail, f"{word!r} not in {outcome.detail!r}"
