"""Verdicts on where a call's media goes: ``media_passes_through`` and
``media_does_not_pass_through`` a place.

A call expectation names its parties (``call: {from, to}``). The call's time is that of the
parties' ``call`` actions (the caller's ``call`` with ``to`` the callee, and the callee's
actions that overlap it), from the first one's start to the last one's end. Its media are the
parties' UDP flows (``analysis/endpoints``) that were alive during that time and carried at
least ``MIN_PACKETS`` packets each way: voice is encrypted (SRTP, Mumble's OCB, ...), so the
claim rests on where the packets go, never on their content. A flow's time is its first and
last packet of the run, so a flow that also ran outside the call counts for it.

``media_passes_through`` passes on a media flow to an endpoint in the place;
``media_does_not_pass_through`` fails on one. Without one, the claim rests on absence, which
proves something only when the call ran (both parties' actions succeeded), media flows of the
call were captured at all (a call with no media says nothing about where media goes), each
was placed, and the capture is complete and undamaged until the call ended; otherwise the
verdict is ``inconclusive`` with those doubts (``facts.settle``).
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

from testbed.run import INCONCLUSIVE, EndpointRow, Event, Expectation, Verdict
from testbed.verdicts.facts import RunFacts, settle
from testbed.verdicts.places import contains, describe

MIN_PACKETS = 20  # each way: a media stream, not a probe or a keep-alive
MEDIA_PROTO = "udp"


def call_window(caller: str, callee: str, facts: RunFacts) -> tuple[float, float] | None:
    """The call's time: the caller's ``call`` actions to ``callee`` and the callee's ``call``
    or ``answer`` actions that overlap them; None when the caller never called."""
    mine = [e for e in facts.events if e.variant == caller and e.action == "call"
            and e.params.get("to") == callee and e.start is not None]
    if not mine:
        return None
    start = min(e.start or 0.0 for e in mine)
    end = max(e.end or e.start or 0.0 for e in mine)
    theirs = [e for e in facts.events if e.variant == callee and e.action in ("call", "answer")
              and e.start is not None and (e.start or 0.0) <= end
              and (e.end or e.start or 0.0) >= start]
    return (min([start, *(e.start or 0.0 for e in theirs)]),
            max([end, *(e.end or e.start or 0.0 for e in theirs)]))


def media_flows(parties: tuple[str, ...], window: tuple[float, float],
                facts: RunFacts) -> list[EndpointRow]:
    """The parties' UDP flows alive during ``window`` with media both ways."""
    a, b = window
    return [e for e in facts.endpoints if e.variant in parties and e.proto == MEDIA_PROTO
            and e.first_seen <= b and e.last_seen >= a
            and e.packets_out >= MIN_PACKETS and e.packets_in >= MIN_PACKETS]


def _evidence(e: EndpointRow, facts: RunFacts) -> dict[str, Any]:
    info = facts.place(e.address)
    when = datetime.datetime.fromtimestamp(e.first_seen, datetime.UTC).strftime("%H:%M:%S")
    who = "; ".join([*([f"stands for {info.stands_for}"] if info.stands_for else []),
                     *info.names[:1]]) or "no name"
    text = (f"{e.variant}'s media went to {e.address} ({who}): "
            f"{info.country_name or info.country or info.special or '?'}; {e.proto}/{e.port}, "
            f"{e.packets_out} packets out and {e.packets_in} in, first at {when} UTC")
    return {"kind": "media-flow", "strength": "observed", "variant": e.variant,
            "address": e.address, "proto": e.proto, "port": e.port,
            "packets_out": e.packets_out, "packets_in": e.packets_in,
            "first_seen": e.first_seen, "last_seen": e.last_seen, "country": info.country,
            "names": list(info.names), "text": text}


def _failed(events: list[Event]) -> list[str]:
    return [f"{e.variant}'s {e.action} {e.outcome}: {e.error}" for e in events if not e.ok]


def evaluate_call(expectation: Expectation, facts: RunFacts) -> Verdict:
    if expectation.call is None:
        raise ValueError(f"{expectation.id}: a {expectation.kind} expectation names no call")
    caller, callee = expectation.call.sender, expectation.call.recipient
    place, kind = expectation.place, expectation.kind
    where, label = describe(place), f"the call from {caller} to {callee}"
    v = Verdict(id=expectation.id, variant=caller, kind=kind, place=place,
                status=INCONCLUSIVE, reason="", geoip=facts.geoip)
    window = call_window(caller, callee, facts)
    if window is None:
        return replace(v, reason=f"{label} was not made: {caller} has no `call` action "
                                 f"to {callee} in this run")
    flows = media_flows((caller, callee), window, facts)
    hits = [_evidence(e, facts) for e in flows
            if contains(place, e.address, facts.place(e.address))]
    doubts = [*facts.doubts(caller, until=window[1]), *facts.doubts(callee, until=window[1]),
              *facts.unplaced(e.address for e in flows)]
    if not flows:
        doubts.append(f"no media of {label} was captured (no UDP flow of {caller} or "
                      f"{callee} with {MIN_PACKETS}+ packets each way during the call)")
    positive = kind == "media_passes_through"
    status = settle(positive, bool(hits), list(dict.fromkeys(doubts)))
    if hits:
        also = sorted({h["address"] for h in hits[1:]} - {hits[0]["address"]})
        return replace(v, status=status, evidence=tuple(hits), reason=(
            f"the media of {label} passed through {where}: {hits[0]['text']}"
            + (f"; also {', '.join(also)}" if also else "")))
    if status == INCONCLUSIVE:
        lead = f"no evidence that the media of {label} passed through {where}, and the run " \
               "cannot rule it out: "
        return replace(v, status=status, reason=lead + "; ".join(dict.fromkeys(doubts)))
    seen = [_evidence(e, facts) for e in flows]
    places = sorted({h["country"] or h["address"] for h in seen})
    verb = "never passed" if positive else "did not pass"
    return replace(v, status=status, evidence=tuple(seen), reason=(
        f"the media of {label} {verb} through {where}: {len(flows)} media flows during the "
        f"call, to {', '.join(sorted({h['address'] for h in seen}))} "
        f"({', '.join(places)})"))
