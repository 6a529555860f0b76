"""Verdicts: expectations checked against a run's analysis (through pytest)."""

from testbed.verdicts.evaluate import FAIL, INCONCLUSIVE, PASS, RunFacts, Verdict, evaluate

__all__ = ["FAIL", "INCONCLUSIVE", "PASS", "RunFacts", "Verdict", "evaluate"]
