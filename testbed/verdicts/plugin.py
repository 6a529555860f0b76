"""pytest plugin (entry point ``pytest11``): a run directory's expectations become test items.

    pytest results/<scenario>/<run-id>

collects ``manifest.json`` of each run, one item per expectation; an item passes, fails with
a sentence a researcher would write, or is skipped as ``inconclusive: <reason>``. At the end
the verdicts are written to the run's ``verdicts.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.verdicts.evaluate import FAIL, INCONCLUSIVE, RunFacts, Verdict, evaluate

VERDICTS = pytest.StashKey[dict[Path, list[Verdict]]]()


class VerdictFailed(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


def pytest_configure(config: pytest.Config) -> None:
    config.stash[VERDICTS] = {}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Re-analyses (``<run>/reanalysis/``) are checked only when asked for by path."""
    if collection_path.name == "reanalysis" and (collection_path.parent / "manifest.json").exists():
        asked = [Path(a.split("::")[0]).resolve() for a in config.args]
        if not any(a == collection_path.resolve() or collection_path.resolve() in a.parents
                   for a in asked):
            return True
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name == "manifest.json" and (file_path.parent / "events.jsonl").exists():
        return RunFile.from_parent(parent, path=file_path)
    return None


class RunFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        manifest = json.loads(self.path.read_text())
        facts = RunFacts.load(self.path.parent)
        for exp in manifest.get("expectations", []):
            yield ExpectationItem.from_parent(self, name=exp["id"], expectation=exp, facts=facts)


class ExpectationItem(pytest.Item):
    def __init__(self, *, expectation: dict[str, Any], facts: RunFacts, **kw: Any) -> None:
        super().__init__(**kw)
        self.expectation = expectation
        self.facts = facts

    def runtest(self) -> None:
        try:
            verdict = evaluate(self.expectation, self.facts)
        except Exception as e:
            # a defect, not a finding: it fails loudly, and the run's verdicts still say so
            e_ = self.expectation
            self.config.stash[VERDICTS].setdefault(self.path.parent, []).append(Verdict(
                id=e_["id"], variant=e_["variant"], kind=e_["kind"], place=e_["place"],
                status=INCONCLUSIVE,
                reason=f"the expectation could not be evaluated: {type(e).__name__}: {e}"))
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
            v = excinfo.value.verdict
            subject = f"chat {v.chat['from']} → {v.chat['to']}" if v.chat else v.variant
            where = ", ".join(str(x) for x in v.place.values())
            lines = [f"expectation failed: {subject} {v.kind.replace('_', ' ')} {where}".rstrip(),
                     f"  {v.reason}"]
            lines += [f"  evidence: {e.get('text', e)}" for e in v.evidence[:10]]
            return "\n".join(lines)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        e = self.expectation
        return self.path, 0, f"{e['variant']} {e['kind']} {e['place']}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    for run, verdicts in session.config.stash.get(VERDICTS, {}).items():
        (run / "verdicts.json").write_text(json.dumps(
            {"verdicts": [v.to_json() for v in verdicts]}, indent=1, ensure_ascii=False) + "\n")
