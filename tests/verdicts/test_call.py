"""Call verdicts: does a call's media (its parties' UDP flows during the call) pass through a
place. Each case is a small run: the parties' call actions, their flows, the capture."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.run import CaptureCounts, EndpointRow, Event, Expectation, Placement
from testbed.verdicts import FAIL, INCONCLUSIVE, PASS, RunFacts, Verdict, evaluate

CN, DE = "203.0.113.64", "198.51.100.64"
PLACES = {CN: {"special": None, "country": "CN", "country_name": "China",
               "names": ["voice.cn.lab.example"], "views": []},
          DE: {"special": None, "country": "DE", "country_name": "Germany",
               "names": ["voice.de.lab.example"], "views": []}}
GOOD = {"captured": 5000, "dropped": 0, "complete": True}


def action(variant: str, name: str, start: float, end: float, to: str | None = None,
           outcome: str = "ok") -> dict[str, Any]:
    return {"variant": variant, "action": name, "outcome": outcome, "start": start, "end": end,
            "params": {"to": to} if to else {},
            "error": None if outcome == "ok" else "image not found"}


CALL = (action("a", "launch", 1, 5), action("b", "launch", 1, 5),
        action("a", "call", 10, 18, to="b"), action("b", "call", 10, 18, to="a"))


def flow(variant: str, address: str, proto: str = "udp", out: int = 400, inn: int = 400,
         first: float = 6.0, last: float = 20.0) -> dict[str, Any]:
    return {"variant": variant, "address": address, "proto": proto, "port": 64738,
            "packets_out": out, "packets_in": inn, "bytes_out": out * 150,
            "bytes_in": inn * 150, "first_seen": first, "last_seen": last}


def facts(flows, events=CALL, capture=GOOD) -> RunFacts:
    return RunFacts(endpoints=tuple(EndpointRow.from_json(f) for f in flows),
                    places={a: Placement.from_json(p) for a, p in PLACES.items()},
                    capture=CaptureCounts.from_json(capture), geoip=(),
                    events=tuple(Event.from_json(e) for e in events))


def check(kind: str, country: str, f: RunFacts, caller: str = "a", callee: str = "b"
          ) -> Verdict:
    return evaluate(Expectation.from_json(
        {"id": "x", "variant": caller, "kind": kind, "place": {"country": country},
         "call": {"from": caller, "to": callee}}), f)


THROUGH, NOT = "media_passes_through", "media_does_not_pass_through"
BOTH_TO_CN = [flow("a", CN), flow("b", CN)]
BOTH_TO_DE = [flow("a", DE), flow("b", DE)]


@pytest.mark.parametrize(("kind", "country", "flows", "status", "said"), [
    (THROUGH, "CN", BOTH_TO_CN, PASS, "passed through CN: a's media went to 203.0.113.64"),
    (NOT, "CN", BOTH_TO_CN, FAIL, "passed through CN"),
    (THROUGH, "CN", BOTH_TO_DE, FAIL, "never passed through CN: 2 media flows"),
    (NOT, "CN", BOTH_TO_DE, PASS, "did not pass through CN: 2 media flows during the call, "
                                  "to 198.51.100.64 (DE)"),
    # only the callee's flow goes to the place: still the call's media
    (THROUGH, "CN", [flow("a", DE), flow("b", CN)], PASS, "b's media went to 203.0.113.64"),
    # TCP to the place (signalling) is not media
    (THROUGH, "CN", [*BOTH_TO_DE, flow("a", CN, proto="tcp")], FAIL, "never passed"),
    # a few packets one way (a probe, a keep-alive) are not media
    (THROUGH, "CN", [*BOTH_TO_DE, flow("a", CN, out=5, inn=0)], FAIL, "never passed"),
    # a flow that ended before the call began, or began after it ended, is not its media
    (THROUGH, "CN", [*BOTH_TO_DE, flow("a", CN, first=1, last=9)], FAIL, "never passed"),
    (THROUGH, "CN", [*BOTH_TO_DE, flow("a", CN, first=19, last=30)], FAIL, "never passed"),
    # another pair's media does not count for this call
    (THROUGH, "CN", [*BOTH_TO_DE, flow("c", CN)], FAIL, "never passed"),
])
def test_a_calls_media_is_judged_by_where_its_udp_flows_go(
        kind: str, country: str, flows: list[dict[str, Any]], status: str, said: str) -> None:
    v = check(kind, country, facts(flows))
    assert v.status == status, v.reason
    assert said in v.reason


@pytest.mark.parametrize("kind", [THROUGH, NOT])
@pytest.mark.parametrize(("flows", "events", "capture", "doubt"), [
    ([], CALL, GOOD, "no media of the call from a to b was captured"),
    ([flow("a", DE, inn=0), flow("b", DE, inn=0)], CALL, GOOD,
     "no media of the call from a to b was captured"),
    (BOTH_TO_DE, CALL, {**GOOD, "dropped": 3}, "the capture dropped 3 packets"),
    (BOTH_TO_DE, CALL, {**GOOD, "complete": False}, "the capture is incomplete"),
    (BOTH_TO_DE, (*CALL, action("b", "hang_up", 19, 20, outcome="failed")), GOOD,
     "b's actions did not all succeed"),
    ([flow("a", "192.0.2.9"), flow("b", "192.0.2.9")], CALL, GOOD,
     "endpoints could not be placed: 192.0.2.9"),
])
def test_absence_of_media_in_a_place_proves_nothing_with_doubts(
        kind: str, flows: list[dict[str, Any]], events: tuple[dict[str, Any], ...],
        capture: dict[str, Any], doubt: str) -> None:
    v = check(kind, "CN", facts(flows, events, capture))
    assert v.status == INCONCLUSIVE, v.reason
    assert doubt in v.reason


@pytest.mark.parametrize("kind", [THROUGH, NOT])
def test_a_call_that_was_never_made_is_inconclusive(kind: str) -> None:
    v = check(kind, "CN", facts(BOTH_TO_CN), caller="a", callee="z")
    assert v.status == INCONCLUSIVE
    assert v.reason == "the call from a to z was not made: a has no `call` action to z in " \
                       "this run"


def test_evidence_names_the_flows_of_the_call() -> None:
    v = check(THROUGH, "CN", facts(BOTH_TO_CN))
    assert [(e["variant"], e["address"], e["proto"]) for e in v.evidence] == [
        ("a", CN, "udp"), ("b", CN, "udp")]
    assert all(e["kind"] == "media-flow" and e["strength"] == "observed" for e in v.evidence)
