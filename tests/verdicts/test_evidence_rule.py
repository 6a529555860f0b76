"""The one rule (``facts.settle``): evidence for what a claim names decides it; without it, a
claim whose evidence is missing is inconclusive, never a pass on absence nor a fail.

Every kind of claim, with every way the evidence can be missing, on facts built in memory: a run
that recorded everything settles each claim (the baseline, so the family is not vacuous); the
same run with one source of evidence gone leaves no negative claim passing and no positive claim
failing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from testbed.analysis.classify import KINDS, LOCAL_KINDS
from testbed.run import (
    CaptureCounts,
    CaptureDamage,
    ChatRecord,
    EndpointRow,
    Event,
    Expectation,
    Placement,
)
from testbed.run import files as f
from testbed.verdicts import FAIL, INCONCLUSIVE, PASS, RunFacts, evaluate
from testbed.verdicts.facts import settle

CANARY = "CANARY-rule"
T0 = 1_800_000_000.0
PARTIES = ("regular", "control")
US, EE = "198.51.100.39", "198.51.100.247"
PLACES = {US: {"country": "US"}, EE: {"country": "EE"}}
TEXT = f"六四 {CANARY}"


def claim(kind: str) -> Expectation:
    base: dict[str, Any] = {"id": kind, "variant": "regular", "kind": kind,
                            "place": {"country": "CN"}}
    if kind == "only_reaches":  # regular stays in the US and EE
        base["places"] = [{"country": "US"}, {"country": "EE"}]
    if kind in ("passes_through", "does_not_pass_through", "delivered", "not_delivered"):
        base["chat"] = {"from": "regular", "to": "control", "text_contains": "六四"}
    return Expectation.from_json(base)


KINDS_OF_CLAIM = ("reaches", "never_reaches", "only_reaches", "passes_through",
                  "does_not_pass_through", "delivered", "not_delivered")
NEGATIVE = {"never_reaches", "only_reaches", "does_not_pass_through", "not_delivered"}


def complete_run() -> RunFacts:
    """Both parties logged in and were heard; regular sent the canary message at T0+10, which
    control's screen did not show; its path leads to EE only, and the capture is whole."""
    events = [Event.from_json({"variant": v, "action": "login", "outcome": "ok",
                               "start": T0, "end": T0 + 1}) for v in PARTIES]
    events.append(Event.from_json({"variant": "regular", "action": "chat_send", "outcome": "ok",
                                   "start": T0 + 10, "end": T0 + 11,
                                   "params": {"to": "control", "text": TEXT}}))
    events.append(Event.from_json({"variant": "control", "action": "chat_absent",
                                   "outcome": "ok", "start": T0 + 11, "end": T0 + 16}))
    endpoints = [EndpointRow.from_json({"variant": v, "address": a, "proto": "tcp", "port": 443,
                                        "first_seen": T0 + 2, "last_seen": T0 + 30})
                 for v in PARTIES for a in (US, EE)]
    chats = [ChatRecord.from_json({
        "sender": "regular", "recipient": "control", "text": TEXT, "start": T0 + 10,
        "has_canary": True, "evidence": [{"kind": "canary-decrypted", "variant": "regular",
                                          "address": EE, "port": 443, "proto": "tcp",
                                          "time": T0 + 10.5, "strength": "strong"}]})]
    return RunFacts(endpoints=tuple(endpoints),
                    places={a: Placement.from_json(p) for a, p in PLACES.items()},
                    capture=CaptureCounts.from_json({"captured": 900, "dropped": 0,
                                                     "complete": True}),
                    geoip=(), events=tuple(events), chats=tuple(chats), canary=CANARY)


BASELINE = {"reaches": FAIL, "never_reaches": PASS, "only_reaches": PASS,
            "passes_through": FAIL, "does_not_pass_through": PASS, "delivered": FAIL,
            "not_delivered": PASS}


def without_packets(r: RunFacts) -> RunFacts:
    return replace(r, endpoints=(), capture=CaptureCounts.from_json(
        {"captured": 0, "dropped": 0, "complete": True}))


def without_flows(r: RunFacts) -> RunFacts:
    return replace(r, damage=(CaptureDamage(f.FLOWS, "missing, though capture/tls.jsonl "
                                            "shows 9 intercepted TLS connections"),))


def without_tls_log(r: RunFacts) -> RunFacts:
    return replace(r, damage=(CaptureDamage(f.TLS, "missing"),))


def without_events(r: RunFacts) -> RunFacts:
    return replace(r, events=())


def control_never_ready(r: RunFacts) -> RunFacts:
    events = [e for e in r.events if e.variant != "control"]
    events.append(Event.from_json({"variant": "control", "action": "launch",
                                   "outcome": "failed", "error": "agent unreachable"}))
    return replace(r, events=tuple(events))


def regular_never_ready(r: RunFacts) -> RunFacts:
    failed = Event.from_json({"variant": "regular", "action": "launch", "outcome": "failed",
                              "error": "image not found"})
    return replace(r, events=(*(e for e in r.events if e.variant != "regular"), failed))


def capture_cut_before(r: RunFacts) -> RunFacts:
    return replace(r, damage=(CaptureDamage(f.PCAP, "truncated at byte 9000", T0 + 5),))


def capture_not_stopped(r: RunFacts) -> RunFacts:
    return replace(r, capture=CaptureCounts.from_json({"captured": 900, "complete": False}))


def capture_lossy(r: RunFacts) -> RunFacts:
    return replace(r, capture=CaptureCounts.from_json({"captured": 900, "dropped": 7,
                                                       "complete": True}))


def nobody_placed(r: RunFacts) -> RunFacts:
    return replace(r, places={a: Placement.from_json({"special": "documentation"})
                              for a in PLACES})


MISSING: dict[str, Callable[[RunFacts], RunFacts]] = {
    "no packets": without_packets, "no flows": without_flows, "no TLS log": without_tls_log,
    "no events": without_events, "control never ready": control_never_ready,
    "regular never ready": regular_never_ready, "capture cut before the claim":
    capture_cut_before, "capture not stopped": capture_not_stopped,
    "capture dropped packets": capture_lossy, "endpoints nobody could place": nobody_placed}
#: what each kind of claim rests on: a gap elsewhere leaves it as the baseline has it
TOUCHES = {
    "reaches": {"no packets", "no events", "regular never ready", "capture cut before the claim",
                "capture not stopped", "capture dropped packets",
                "endpoints nobody could place"},
    "passes_through": set(MISSING),
    "delivered": {"no packets", "no events", "control never ready", "regular never ready"},
}
TOUCHES |= {"never_reaches": TOUCHES["reaches"], "only_reaches": TOUCHES["reaches"],
            "does_not_pass_through": TOUCHES["passes_through"],
            "not_delivered": TOUCHES["delivered"]}


@pytest.mark.parametrize("kind", KINDS_OF_CLAIM)
def test_a_complete_run_settles_every_claim(kind: str) -> None:
    v = evaluate(claim(kind), complete_run())
    assert v.status == BASELINE[kind], v.reason


CASES = list(itertools.product(KINDS_OF_CLAIM, MISSING))


@pytest.mark.parametrize(("kind", "missing"), CASES, ids=[f"{k}-{m}" for k, m in CASES])
def test_a_claim_without_its_evidence_is_inconclusive(kind: str, missing: str) -> None:
    v = evaluate(claim(kind), MISSING[missing](complete_run()))
    if missing not in TOUCHES[kind]:
        assert v.status == BASELINE[kind], (missing, v.reason)
        return
    assert v.status == INCONCLUSIVE, (missing, v.status, v.reason)
    assert v.reason


@pytest.mark.parametrize(("positive", "found", "doubts", "status"), [
    (True, True, [], PASS), (True, True, ["x"], PASS), (False, True, [], FAIL),
    (False, True, ["x"], FAIL), (True, False, ["x"], INCONCLUSIVE),
    (False, False, ["x"], INCONCLUSIVE), (True, False, [], FAIL), (False, False, [], PASS)])
def test_settle_is_the_rule(positive: bool, found: bool, doubts: list[str],
                            status: str) -> None:
    assert settle(positive, found, iter(doubts)) == status


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_only_local_special_addresses_need_no_place(kind: str) -> None:
    facts = replace(complete_run(), places={"192.0.2.9": Placement(special=kind)})
    doubts = facts.unplaced(["192.0.2.9"])
    if kind in LOCAL_KINDS:
        assert doubts == []
    else:
        assert doubts == [f"1 endpoints could not be placed: 192.0.2.9 ({kind})"]


def test_damage_counts_only_before_the_end_of_a_claims_time() -> None:
    cut = CaptureDamage(f.PCAP, "truncated at byte 9000", T0 + 50)
    facts = replace(complete_run(), damage=(cut,))
    assert facts.doubts("regular", until=T0 + 20) == []  # the window closed before the cut
    assert facts.doubts("regular", until=T0 + 60) == [cut.sentence()]
    assert facts.doubts("regular") == [cut.sentence()]  # the whole run
    assert "nothing after" in cut.sentence() and "UTC was read" in cut.sentence()
    flows = CaptureDamage(f.FLOWS, "missing")
    facts = replace(complete_run(), damage=(flows,))
    assert facts.doubts("regular") == []  # a reach claim does not rest on decrypted content
    assert facts.doubts("regular", content=True) == ["capture/flows.mitm is missing"]


CN = "203.0.113.15"
KEEPS_EVIDENCE = [m for m in MISSING if m not in ("no packets", "endpoints nobody could place")]


@pytest.mark.parametrize("missing", KEEPS_EVIDENCE)
def test_evidence_found_decides_whatever_else_is_missing(missing: str) -> None:
    """A flow of regular into CN proves ``reaches CN`` and disproves ``never_reaches CN`` even
    on a run with gaps: the gaps only keep absence from proving anything."""
    run = complete_run()
    china = EndpointRow.from_json({"variant": "regular", "address": CN, "proto": "tcp",
                                   "port": 443, "first_seen": T0 + 3, "last_seen": T0 + 4})
    run = replace(run, endpoints=(*run.endpoints, china),
                  places={**run.places, CN: Placement.from_json({"country": "CN"})})
    damaged = MISSING[missing](run)
    assert evaluate(claim("reaches"), damaged).status == PASS
    assert evaluate(claim("never_reaches"), damaged).status == FAIL
