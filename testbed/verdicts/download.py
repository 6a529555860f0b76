"""Verdicts on what a variant's download got: ``redirected_to`` / ``not_redirected_to`` a host
(a glob such as ``*.tom.*``) and ``served`` a body of a given sha256.

The evidence is the variant's own record of each download (``testbed.run.downloads``: every
hop, the final host, the sha256). The claim is about every download of the URL it names (or
every download of the variant): ``redirected_to`` and ``served`` pass when each completed one
holds, ``not_redirected_to`` when none was sent there. Without a completed download there is no
evidence either way: the verdict is ``inconclusive``, saying why (none was made, or it failed).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from testbed.run import FAIL, INCONCLUSIVE, PASS, Expectation, Verdict
from testbed.run.downloads import Download, downloads_of
from testbed.verdicts.facts import RunFacts


def _evidence(d: Download, holds: bool) -> dict[str, Any]:
    return {"kind": "download", "strength": "strong", "holds": holds, "text": d.sentence(),
            **d.to_json()}


def _holds(kind: str, place: dict[str, Any], d: Download) -> bool:
    if kind == "served":
        return (d.sha256 or "").lower() == str(place.get("sha256", "")).lower()
    redirected = d.redirected_to(str(place.get("host", "")))
    return redirected if kind == "redirected_to" else not redirected


def _contrary(kind: str, place: dict[str, Any]) -> str:
    """What was found instead of the claim: ``was not redirected to *.tom.*``."""
    if kind == "served":
        return f"was not served sha256 {place.get('sha256')}"
    return f"was {'' if kind == 'not_redirected_to' else 'not '}redirected to {place.get('host')}"


def evaluate_download(expectation: Expectation, facts: RunFacts) -> Verdict:
    variant, kind, place = expectation.variant, expectation.kind, expectation.place
    url = expectation.download
    which = f"{variant}'s download of {url}" if url else f"{variant}'s downloads"
    v = Verdict(id=expectation.id, variant=variant, kind=kind, place=place,
                status=INCONCLUSIVE, reason="", geoip=facts.geoip)
    mine = [d for d in downloads_of(facts.events, variant) if not url or d.url == url]
    done = [d for d in mine if d.ok]
    if not done:
        failed = "; ".join(d.sentence() for d in mine)
        why = failed or (f"{variant} made no download" + (f" of {url}" if url else "")
                         + " in this run")
        doubts = facts.failed_actions.get(variant)
        if not failed and doubts:
            why += f" ({variant}'s actions did not all succeed: {'; '.join(doubts)})"
        return _replace(v, INCONCLUSIVE, f"{which} cannot be judged: {why}",
                        [_evidence(d, False) for d in mine])
    checks = [(d, _holds(kind, place, d)) for d in done]
    wrong = [d for d, ok in checks if not ok]
    evidence = [_evidence(d, ok) for d, ok in checks]
    if not wrong:
        return _replace(v, PASS, f"{which}: " + "; ".join(d.sentence() for d in done), evidence)
    return _replace(v, FAIL, f"{which} {_contrary(kind, place)}: "
                    + "; ".join(d.sentence() for d in wrong), evidence)


def _replace(v: Verdict, status: str, reason: str, evidence: list[dict[str, Any]]) -> Verdict:
    return replace(v, status=status, reason=reason, evidence=tuple(evidence))
