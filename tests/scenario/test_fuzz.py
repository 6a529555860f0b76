"""The malformed-input family: mutations of every shipped scenario, app profile, internet data
file and build profile (dropped keys, wrong types, huge values, unicode, control characters,
placeholders, host paths, text edits). `validate` and `run` (on the in-tree fakes, no root)
answer each with exit 2 and ``FILE:LINE: ...`` lines, or accept it and run it; they agree;
never a traceback. ``python -m tests.scenario.fuzzing`` is not needed: counts are printed."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from tests.scenario.fuzzing import (
    SEED_TREE,
    TARGETS,
    Case,
    all_cases,
    cli_outcome,
    fake_pools,
)

CASES = all_cases()
FULL_RUNS_PER_TARGET = 3  # accepted inputs run end to end on the fakes (~1 s each)


def _by_target(target: str) -> list[Case]:
    return [c for c in CASES if c.target == target]


def test_the_family_is_large() -> None:
    assert len(CASES) >= 500
    assert set(TARGETS) == {c.target for c in CASES}


@pytest.mark.parametrize("target", ["issue", *sorted(TARGETS)])
def test_no_malformed_input_gives_a_traceback(target: str, tmp_path: Path) -> None:
    tree = tmp_path / "scenarios"
    shutil.copytree(SEED_TREE, tree)
    cases = [c for c in CASES if c.name.startswith("issue:")] if target == "issue" else \
        [c for c in _by_target(target) if not c.name.startswith("issue:")]
    seen: Counter[str] = Counter()
    wrong: list[str] = []
    full_runs = 0
    for case in cases:
        file = tree / case.target
        original = file.read_bytes()
        file.write_bytes(case.content)
        try:
            entry = str(tree / case.entry)
            checked = cli_outcome(["validate", entry, str(file)])
            seen[f"validate {checked.verdict}"] += 1
            if checked.verdict not in ("ok", "rejected"):
                wrong.append(f"{case}: validate: {checked.verdict}: {checked.detail}")
                continue
            if checked.verdict == "ok" and full_runs >= FULL_RUNS_PER_TARGET:
                continue
            with fake_pools():
                ran = cli_outcome(["run", entry, "--results", str(tmp_path / "results")])
            seen[f"run {ran.verdict}"] += 1
            full_runs += checked.verdict == "ok"
            if ran.verdict not in ("ok", "rejected"):
                wrong.append(f"{case}: run: {ran.verdict}: {ran.detail}")
            elif (ran.verdict == "rejected") != (checked.verdict == "rejected"):
                wrong.append(f"{case}: validate said {checked.verdict}, run {ran.verdict}: "
                             f"{ran.detail or checked.detail}")
        finally:
            file.write_bytes(original)
    print(f"{target}: {len(cases)} inputs, {dict(seen)}")
    assert not wrong, f"{len(wrong)} of {len(cases)} inputs:\n" + "\n\n".join(wrong[:5])
    assert seen["validate rejected"] > 0
