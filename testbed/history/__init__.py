"""Run history: compare runs (``diff``), index them (``history``), run the nightly regression
runs (``nightly``) and schedule them (``schedule``).

    diff_runs(a, b) -> RunDiff; format_diff(d) -> str; d.to_json()
    History(path).record(run_dir) / .runs(scenario) / .last_good(scenario) / .reindex(root)
    nightly(scenarios_dir, results, history=None, run=lab_run) -> NightlyReport
    schedule.install(at, unit_dir, enable, runner) / schedule.remove(unit_dir, runner)
    commands.add_parser(sub)     the CLI subcommands
"""

from testbed.history.diff import RunDiff, diff_runs, format_diff, load_run
from testbed.history.index import History, NightlyResult, RunRecord

__all__ = ["History", "NightlyResult", "RunDiff", "RunRecord", "diff_runs", "format_diff",
           "load_run"]
