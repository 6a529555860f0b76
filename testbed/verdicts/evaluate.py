"""Expectations → verdicts, each with its reason and evidence. Never a silent pass.

``evaluate`` hands each expectation to its kind's module: ``reach`` (where a variant went),
``chat`` (a message's path and delivery), ``canary`` (where the run's canary went), ``call``
(where a call's media goes) and ``download`` (where a download was sent, what it was
served), which judge it on ``RunFacts`` (``facts``); a TLS outcome the
expectation names is judged by ``tls`` and must hold too. A verdict is ``pass`` or ``fail`` on
evidence, and ``inconclusive``, with the reason, whenever the run cannot support the claim either
way. ``check.check_run`` judges a whole run.
"""

from __future__ import annotations

from dataclasses import replace

from testbed.run import FAIL, INCONCLUSIVE, PASS, Expectation, Verdict
from testbed.run.manifest import (
    CANARY_KINDS,
    CHAT_KINDS,
    DOWNLOAD_KINDS,
    MEDIA_KINDS,
    REACH_KINDS,
)
from testbed.verdicts.call import evaluate_call
from testbed.verdicts.canary import evaluate_canary
from testbed.verdicts.chat import evaluate_chat
from testbed.verdicts.download import evaluate_download
from testbed.verdicts.facts import RunFacts
from testbed.verdicts.reach import evaluate_reach
from testbed.verdicts.tls import with_tls

__all__ = ["CHAT_KINDS", "FAIL", "INCONCLUSIVE", "PASS", "REACH_KINDS", "RunFacts", "Verdict",
           "evaluate", "undecided"]


def evaluate(expectation: Expectation, facts: RunFacts) -> Verdict:
    """The verdict on one expectation (the manifest's form of a scenario expectation)."""
    if expectation.kind in CHAT_KINDS:
        v = evaluate_chat(expectation, facts)
    elif expectation.kind in MEDIA_KINDS:
        v = evaluate_call(expectation, facts)
    elif expectation.kind in REACH_KINDS:
        v = evaluate_reach(expectation, facts)
    elif expectation.kind in CANARY_KINDS:
        v = evaluate_canary(expectation, facts)
    elif expectation.kind in DOWNLOAD_KINDS:
        v = evaluate_download(expectation, facts)
    else:
        raise ValueError(f"{expectation.id}: unknown kind of expectation {expectation.kind!r}")
    v = with_tls(v, expectation.variant, expectation.tls, facts) if expectation.tls else v
    return with_vantage(v, facts)


def with_vantage(v: Verdict, facts: RunFacts) -> Verdict:
    """The verdict's sentence says where its variant was measured from, on a run whose
    variants took routes other than the simulated internet."""
    vantage = facts.vantage.get(v.variant)
    if vantage is None or all(x.route == "simulated" for x in facts.vantage.values()):
        return v
    return replace(v, reason=f"{v.reason} ({vantage.sentence()})")


def undecided(expectation: Expectation, error: Exception) -> Verdict:
    """The verdict recorded when evaluating raised: a defect, not a finding."""
    return Verdict(id=expectation.id, variant=expectation.variant, kind=expectation.kind,
                   place=expectation.place, status=INCONCLUSIVE,
                   reason="the expectation could not be evaluated: "
                          f"{type(error).__name__}: {error}")

