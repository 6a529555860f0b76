"""Verdicts on where the run's canary went: ``canary_reaches`` and ``canary_never_reaches``.

Whichever action of the variant carried the canary (a form typed in a browser, a message, a
file name), the claim is about its content: the canary found in the variant's traffic
(decrypted flows, plaintext packets; ``analysis/canary.json``) to an endpoint in the place.
A hit is the evidence *for* the place: ``canary_reaches`` passes on it, ``canary_never_reaches``
fails on it. Without a hit, a claim rests on absence, which proves something only when the
variant typed the canary in an action that succeeded, the capture and its decrypted content
are complete and undamaged, every endpoint of a hit was placed, and no TLS the gateway could
not open (or classify) started after the canary was typed (``facts.settle``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from testbed.run import INCONCLUSIVE, ChatEvidence, Event, Expectation, Verdict
from testbed.verdicts.facts import RunFacts, settle
from testbed.verdicts.places import contains, describe


def carriers(variant: str, facts: RunFacts) -> list[Event]:
    """The variant's actions whose step fields held the run's canary, in time order."""
    if not facts.canary:
        return []
    out = [e for e in facts.events if e.variant == variant and e.start is not None
           and any(facts.canary in str(v) for v in e.params.values())]
    return sorted(out, key=lambda e: e.start or 0.0)


def _item(hit: ChatEvidence, facts: RunFacts) -> dict[str, Any]:
    info = facts.place(hit.address)
    return hit.to_json() | {"country": info.country, "names": list(info.names),
                            "stands_for": info.stands_for}


def _sentence(hit: ChatEvidence, facts: RunFacts) -> str:
    info = facts.place(hit.address)
    name = info.names[0] if info.names else "no name"
    return (f"{hit.kind} on {hit.address} ({name}, {info.country or '?'}) "
            f"{hit.proto}/{hit.port} {facts.action_at(hit.variant, hit.time)}: {hit.detail}")


def evaluate_canary(expectation: Expectation, facts: RunFacts) -> Verdict:
    variant, kind, place = expectation.variant, expectation.kind, expectation.place
    where = describe(place)
    positive = kind == "canary_reaches"
    v = Verdict(id=expectation.id, variant=variant, kind=kind, place=place,
                status=INCONCLUSIVE, reason="", geoip=facts.geoip)
    typed = carriers(variant, facts)
    sent = [e for e in typed if e.ok]
    if not sent:
        why = "; ".join(f"{e.action} {e.outcome}: {e.error}" for e in typed)
        return _with(v, f"{variant} did not send the run's canary"
                     + (f" ({why})" if why else ": no action of it carried {canary}"))
    mine = [h for h in facts.canary_hits if h.variant == variant]
    inside = [h for h in mine if contains(place, h.address, facts.place(h.address))]
    doubts = [*facts.silence(variant), *facts.doubts(variant, content=True),
              *facts.unplaced(h.address for h in mine),
              *facts.unopened([((sent[0].start or 0.0), math.inf)])]
    status = settle(positive, bool(inside), doubts)
    evidence = tuple(_item(h, facts) for h in (inside or mine))
    if inside:
        more = f"; and {len(inside) - 1} more hit(s)" if len(inside) > 1 else ""
        return _with(v, f"{variant}'s canary reached {where}: "
                     f"{_sentence(inside[0], facts)}{more}", status, evidence)
    if status == INCONCLUSIVE:
        return _with(v, f"no trace of {variant}'s canary in {where}, and the run cannot rule "
                     "it out: " + "; ".join(dict.fromkeys(doubts)), status, evidence)
    elsewhere = sorted({f"{h.address} ({facts.place(h.address).country or '?'})" for h in mine})
    return _with(v, f"{variant}'s canary never reached {where}: it was found only on "
                 + (", ".join(elsewhere) if elsewhere else "no endpoint")
                 + " (the capture and its decrypted content are complete)", status, evidence)


def _with(v: Verdict, reason: str, status: str = INCONCLUSIVE,
          evidence: tuple[Mapping[str, Any], ...] = ()) -> Verdict:
    return replace(v, status=status, reason=reason, evidence=tuple(dict(e) for e in evidence))
