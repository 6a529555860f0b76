"""Nightly regression runs: run every scenario marked ``nightly: true``, compare each new run
with the scenario's last good run, record the outcome in the history index.

    find_nightly(scenarios_dir) -> (scenario files, problems)
    nightly(scenarios_dir, results, ...) -> NightlyReport     report.exit_code: 0 / 1

A **regression** is a verdict that passed in the last good run and does not pass now, or a
new run that failed or was interrupted. New or vanished endpoints, countries, organisations
and ASNs are always printed; a country appearing is a regression only through a verdict.
A new run that is not good for another reason (a verdict the baseline did not have fails;
the first run ever has a failing verdict) also exits 1, reported as a failure rather than a
regression. The run function is injectable (``run=``) so tests can use hand-made runs.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from testbed._errors import TestbedError
from testbed.history.diff import RunDiff, RunView, diff_views, format_diff, load_run
from testbed.history.errors import BadInput, HistoryError
from testbed.history.index import History, NightlyResult, default_index
from testbed.run.files import MANIFEST
from testbed.scenario import Scenario, load_scenario

Progress = Callable[[str], None]
RunFn = Callable[[Scenario, Path, Progress], Path]
"""Runs one scenario into ``results`` and returns the new run directory."""


def lab_run(scenario: Scenario, results: Path, progress: Progress) -> Path:
    """The real run function: ``testbed.orchestrator.run.run_scenario``."""
    from testbed.orchestrator.run import run_scenario

    return run_scenario(scenario, results, progress=progress).run.path


def _is_nightly_scenario(path: Path) -> bool:
    """A YAML mapping that looks like a scenario and says ``nightly: true``. App profiles, lab
    data and build profiles (and unparsable files) are not."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return (isinstance(data, dict) and ("scenario" in data or "clients" in data)
            and "app" not in data and data.get("nightly") is True)


def find_nightly(scenarios_dir: Path) -> list[Path]:
    """Scenario files under ``scenarios_dir`` (recursively) marked ``nightly: true``."""
    root = Path(scenarios_dir)
    if not root.is_dir():
        raise BadInput(f"{root}: no such scenarios folder")
    files = sorted({*root.rglob("*.yaml"), *root.rglob("*.yml")})
    return [f for f in files if f.is_file() and _is_nightly_scenario(f)]


@dataclass
class ScenarioOutcome:
    """One scenario's nightly result."""

    file: Path
    scenario: str | None = None
    run: Path | None = None
    status: str | None = None
    baseline: Path | None = None
    diff: RunDiff | None = None
    regression: bool = False
    failed: bool = False  # not good, but not (only) a regression
    error: str | None = None  # could not load or run the scenario
    notes: list[str] = field(default_factory=list)  # the sentences saying why

    @property
    def ok(self) -> bool:
        return not (self.regression or self.failed or self.error)

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.file), "scenario": self.scenario,
                "run": str(self.run) if self.run else None, "status": self.status,
                "baseline": str(self.baseline) if self.baseline else None,
                "regression": self.regression, "failed": self.failed, "error": self.error,
                "notes": self.notes, "diff": self.diff.to_json() if self.diff else None}


@dataclass
class NightlyReport:
    outcomes: list[ScenarioOutcome]

    @property
    def exit_code(self) -> int:
        return 0 if self.outcomes and all(o.ok for o in self.outcomes) else 1


def judge(new: RunView, base: RunView | None) -> tuple[bool, bool, list[str]]:
    """(regression, failed, notes) for a new run against its baseline (None: first run)."""
    notes: list[str] = []
    regression = failed = False
    if new.status != "complete":
        regression = True
        notes.append(f"the run {new.status} (status {new.status!r}, see "
                     f"{new.path / MANIFEST})")
    if base is not None:
        for vid, v in base.verdicts.items():
            if not v.passed:
                continue
            now = new.verdicts.get(vid)
            if now is None:
                regression = True
                notes.append(f"verdict {vid} passed in {base.run_id} and is missing now")
            elif not now.passed:
                regression = True
                notes.append(f"verdict {vid}: pass -> {now.status}")
    for vid, v in new.verdicts.items():
        if not v.passed and (base is None or vid not in base.verdicts):
            failed = True
            notes.append(f"verdict {vid}: {v.status}: {_short(v.reason)}")
    if not new.verdicts and new.status == "complete":
        failed = True
        notes.append("the run produced no verdicts")
    return regression, failed, notes


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _country_notes(d: RunDiff) -> list[str]:
    """Countries that appeared or vanished, per variant: printed, never a regression alone."""
    notes = []
    for v in d.variants:
        notes += [f"{v.variant} now reaches {c}" for c in v.countries_added]
        notes += [f"{v.variant} no longer reaches {c}" for c in v.countries_removed]
    return notes


@contextmanager
def _lock(results: Path) -> Iterator[None]:
    """One nightly at a time per results folder."""
    results.mkdir(parents=True, exist_ok=True)
    fd = os.open(results / ".nightly.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HistoryError(f"another testbed nightly is running on {results}") from None
        yield
    finally:
        os.close(fd)


def run_one(file: Path, results: Path, history: History, run: RunFn,
            out: Progress) -> ScenarioOutcome:
    """Load, run, compare with the last good run, record. Never raises for a failed run."""
    outcome = ScenarioOutcome(file)
    try:
        scenario = load_scenario(file)
    except TestbedError as e:
        outcome.error = f"{file}: not a valid scenario: {str(e).splitlines()[0]}"
        return outcome
    outcome.scenario = scenario.name
    history.sync(results)
    outcome.baseline = history.last_good(scenario.name)
    out(f"== {scenario.name} ({file})")
    try:
        outcome.run = run(scenario, results, out)
    except TestbedError as e:
        outcome.error = f"{scenario.name}: the run could not be made: {e}"
        return outcome
    new = load_run(outcome.run)
    outcome.status = new.status
    base = load_run(outcome.baseline) if outcome.baseline else None
    outcome.regression, outcome.failed, outcome.notes = judge(new, base)
    if base is not None:
        outcome.diff = diff_views(base, new)
        outcome.notes += _country_notes(outcome.diff)
    history.record(outcome.run, NightlyResult(
        baseline=base.run_id if base else None, regression=outcome.regression,
        notes=outcome.notes))
    return outcome


def report(o: ScenarioOutcome) -> str:
    """What one scenario's nightly found, for the terminal."""
    name = o.scenario or str(o.file)
    if o.error:
        return f"{name}: ERROR: {o.error}"
    lines = [f"{name}: run {o.run} ({o.status})"]
    if o.diff is None:
        lines.append(f"{name}: no baseline (no earlier run of {name} passed every verdict): "
                     "judged on its own verdicts")
    else:
        lines.append(f"{name}: compared with the last good run {o.diff.a.run_id}")
        lines.extend("  " + line for line in format_diff(o.diff).splitlines())
    if o.regression:
        lines.append(f"{name}: REGRESSION")
    elif o.failed:
        lines.append(f"{name}: FAILED (not a regression against the baseline)")
    else:
        lines.append(f"{name}: no regression")
    lines.extend(f"  - {n}" for n in o.notes)
    return "\n".join(lines)


def nightly(scenarios_dir: Path, results: Path, history: History | None = None,
            run: RunFn = lab_run, out: Progress | None = None) -> NightlyReport:
    """Run every nightly scenario under ``scenarios_dir`` into ``results``; see the module doc.
    Raises BadInput when there is no such folder or no nightly scenario in it."""
    def default_out(message: str) -> None:
        print(message, flush=True)

    say = out or default_out
    results = Path(results)
    history = history or History(default_index(results))
    files = find_nightly(scenarios_dir)
    if not files:
        raise BadInput(f"{scenarios_dir}: no scenario marked 'nightly: true'")
    outcomes = []
    with _lock(results):
        for file in files:
            o = run_one(file, results, history, run, say)
            outcomes.append(o)
            say(report(o))
    rep = NightlyReport(outcomes)
    bad = [o.scenario or str(o.file) for o in outcomes if not o.ok]
    regressed = [o.scenario or str(o.file) for o in outcomes if o.regression]
    if not bad:
        say(f"nightly: {len(outcomes)} scenario(s), no regression")
    else:
        say(f"nightly: {len(bad)} of {len(outcomes)} scenario(s) not passing"
            + (f"; regression in {', '.join(regressed)}" if regressed else ""))
    return rep


__all__ = ["NightlyReport", "RunFn", "ScenarioOutcome", "find_nightly", "judge", "lab_run",
           "nightly"]
