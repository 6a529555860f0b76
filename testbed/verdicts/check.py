"""Judge one run directory: every expectation of its manifest is evaluated on the run's facts,
and ``verdicts.json`` and ``junit.xml`` are written there. ``pytest RUN`` does the same
through the plugin (``verdicts.plugin``)."""

from __future__ import annotations

import datetime
import time
import traceback
from pathlib import Path

from testbed.run import Verdict, store
from testbed.run import files as f
from testbed.verdicts.evaluate import RunFacts, evaluate, undecided
from testbed.verdicts.junit import Case, write_junit


def check_run(run: Path) -> list[Verdict]:
    """The run's verdicts, in the order of its expectations. An evaluation that raises (a
    defect, not a finding) gives an inconclusive verdict and a junit failure with the
    traceback, as under pytest."""
    started, t0 = datetime.datetime.now(datetime.UTC), time.perf_counter()
    facts = RunFacts.load(run)
    cases = []
    for expectation in facts.expectations:
        t, error = time.perf_counter(), None
        try:
            verdict = evaluate(expectation, facts)
        except Exception as e:  # a defect: recorded in the verdict and junit.xml
            verdict, error = undecided(expectation, e), traceback.format_exc()
        cases.append(Case(verdict, time.perf_counter() - t, error))
    verdicts = [c.verdict for c in cases]
    store.write_verdicts(run, verdicts)
    write_junit(run / f.JUNIT, cases, started, time.perf_counter() - t0)
    return verdicts
