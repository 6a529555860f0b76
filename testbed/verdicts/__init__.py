"""Verdicts: expectations checked against a run's analysis (``check_run``, or pytest through
the plugin)."""

from testbed.verdicts.evaluate import FAIL, INCONCLUSIVE, PASS, RunFacts, Verdict, evaluate

__all__ = ["FAIL", "INCONCLUSIVE", "PASS", "RunFacts", "Verdict", "evaluate"]
