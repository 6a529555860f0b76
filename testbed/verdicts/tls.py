"""The TLS part of a claim: an expectation may name the TLS outcome it expects (``tls``, one
of ``TLS_OUTCOMES``) of its variant's connections, e.g. ``untrusted`` for an app that brings
its own trust store. Outcomes are decided by difference (``testbed.capture.outcomes``); the
claim holds when every client-and-host of the variant (those to the claim's endpoints, when it
names some) has that outcome, fails on one that has another, and is ``inconclusive`` when none
was seen or one could not be classified: a claim never rests on an unclassified connection.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from testbed.run import FAIL, INCONCLUSIVE, PASS, Verdict
from testbed.run.events import UNCLASSIFIED
from testbed.verdicts.facts import RunFacts

RANK = {FAIL: 0, INCONCLUSIVE: 1, PASS: 2}  # the weaker of two parts decides a whole claim


def tls_claim(variant: str, word: str, facts: RunFacts,
              servers: Collection[str] | None = None) -> tuple[str, str]:
    """``(status, reason)`` of "``variant``'s TLS (to ``servers``, when given) is ``word``"."""
    address = facts.clients.get(variant)
    if not address:
        return INCONCLUSIVE, (f"the manifest gives no address for {variant}, so its TLS cannot "
                              "be told from other clients'")
    mine = [o for o in facts.tls if o.client == address
            and (servers is None or o.server in servers)]
    if not mine:
        return INCONCLUSIVE, f"no TLS of {variant}{' to these endpoints' if servers else ''} " \
                             "was seen"
    wrong = [o for o in mine if o.outcome not in (word, UNCLASSIFIED)]
    if wrong:
        o = wrong[0]
        more = f" (and {len(wrong) - 1} more host(s))" if len(wrong) > 1 else ""
        return FAIL, f"{variant}'s TLS to {o.host} was {o.outcome}, not {word}{more}: {o.reason}"
    unclear = [o for o in mine if o.outcome == UNCLASSIFIED]
    if unclear:
        o = unclear[0]
        return INCONCLUSIVE, (f"{variant}'s TLS to {o.host} could not be classified, so it "
                              f"cannot show {word}: {o.reason}")
    return PASS, f"{variant}'s TLS to {len(mine)} host(s) was {word}: {mine[0].reason}"


def with_tls(v: Verdict, variant: str, word: str, facts: RunFacts,
             servers: Collection[str] | None = None) -> Verdict:
    """Verdict ``v`` of a claim that also names a TLS outcome: both parts must hold; the weaker
    status stands, and the reason says both."""
    status, reason = tls_claim(variant, word, facts, servers)
    worst = min((v.status, status), key=lambda s: RANK.get(s, 1))
    return replace(v, status=worst, reason=f"{v.reason}; TLS: {reason}")
