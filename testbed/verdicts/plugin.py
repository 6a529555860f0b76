"""pytest plugin (entry point ``pytest11``): a run directory's expectations become test items.

    pytest results/<scenario>/<run-id>

collects ``manifest.json`` of each run, one item per expectation; an item passes, fails with
a sentence a researcher would write, or is skipped as ``inconclusive: <reason>``. At the end
the verdicts are written to the run's ``verdicts.json``. A run whose files cannot be read is a
collection error, and its earlier verdicts, junit.xml and report are removed: none stands as
if it were current. (``testbed run`` and ``testbed
analyze`` judge without pytest: ``verdicts.check``.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed._errors import TestbedError
from testbed.run import Expectation, store
from testbed.run import files as f
from testbed.verdicts.evaluate import FAIL, INCONCLUSIVE, RunFacts, Verdict, evaluate, undecided
from testbed.verdicts.junit import failure_text

VERDICTS = pytest.StashKey[dict[Path, list[Verdict]]]()


class VerdictFailed(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


def pytest_configure(config: pytest.Config) -> None:
    config.stash[VERDICTS] = {}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Re-analyses (``<run>/reanalysis/``) are checked only when asked for by path."""
    if collection_path.name == f.REANALYSIS_DIR and f.is_run(collection_path.parent):
        asked = [Path(a.split("::")[0]).resolve() for a in config.args]
        if not any(a == collection_path.resolve() or collection_path.resolve() in a.parents
                   for a in asked):
            return True
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name == f.MANIFEST and any((file_path.parent / name).is_file()
                                            for name in f.RUN_MARKS):
        return RunFile.from_parent(parent, path=file_path)
    return None


class RunFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        try:
            facts = RunFacts.load(self.path.parent)
        except TestbedError:
            store.withdraw_derived(self.path.parent, f.JUDGED)
            raise
        for exp in facts.expectations:
            yield ExpectationItem.from_parent(self, name=exp.id, expectation=exp, facts=facts)


class ExpectationItem(pytest.Item):
    def __init__(self, *, expectation: Expectation, facts: RunFacts, **kw: Any) -> None:
        super().__init__(**kw)
        self.expectation = expectation
        self.facts = facts

    def runtest(self) -> None:
        try:
            verdict = evaluate(self.expectation, self.facts)
        except Exception as e:
            # a defect, not a finding: it fails loudly, and the run's verdicts still say so
            self.config.stash[VERDICTS].setdefault(self.path.parent, []).append(
                undecided(self.expectation, e))
            raise
        self.config.stash[VERDICTS].setdefault(self.path.parent, []).append(verdict)
        self.user_properties.append(("verdict", verdict.status))
        if verdict.status == FAIL:
            raise VerdictFailed(verdict)
        if verdict.status == INCONCLUSIVE:
            pytest.skip(f"inconclusive: {verdict.reason}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, VerdictFailed):
            return failure_text(excinfo.value.verdict)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        e = self.expectation
        return self.path, 0, f"{e.variant} {e.kind} {e.place}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    for run, verdicts in session.config.stash.get(VERDICTS, {}).items():
        store.write_verdicts(run, verdicts)
