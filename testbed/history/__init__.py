"""Run history: compare runs (``diff``), index them (``history``), run the nightly regression
runs (``nightly``) and schedule them (``schedule``).

    diff_runs(a, b) -> RunDiff; format_diff(d) -> str; d.to_json()
    History(path).record(run_dir) / .runs(scenario) / .last_good(scenario) / .reindex(root)
    nightly(scenarios_dir, results, history=None, run=lab_run) -> NightlyReport
    schedule.install(at, unit_dir, enable, runner) / schedule.remove(unit_dir, runner)
    commands.add_parser(sub)     the CLI subcommands
"""


# ruff: noqa: F401  (the names imported for the type checker only are the package's exports)
from __future__ import annotations

from typing import TYPE_CHECKING

from testbed._lazy import lazy_exports

if TYPE_CHECKING:  # the names, for the type checker (exported through `__all__`)
    from testbed.history.diff import RunDiff, diff_runs, format_diff, load_run
    from testbed.history.index import History, NightlyResult, RunRecord

# (loaded on first use: the CLI's parser reads `commands` without the index's sqlite3)
__all__, __getattr__ = lazy_exports(__name__, {
    "diff": ("RunDiff", "diff_runs", "format_diff", "load_run"),
    "index": ("History", "NightlyResult", "RunRecord"),
})
