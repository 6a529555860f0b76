"""Verdicts: pass only on evidence, fail with the evidence, inconclusive with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.run import (
    CaptureCounts,
    EndpointRow,
    Event,
    Expectation,
    GeoipDatabase,
    Placement,
)
from testbed.verdicts import FAIL, INCONCLUSIVE, PASS, RunFacts, evaluate

NEVER_CN = Expectation.from_json(
    {"id": "r", "variant": "regular", "kind": "never_reaches", "place": {"country": "CN"}})
REACHES_CN = Expectation.from_json(
    {"id": "t", "variant": "tom-en", "kind": "reaches", "place": {"country": "CN"}})
GOOD_CAPTURE = {"captured": 100, "received": 100, "dropped": 0, "complete": True}
DB = (GeoipDatabase.from_json({"file": "lab.mmdb", "sha256": "ab" * 32}),)


def endpoint(variant: str, address: str, **kw: Any) -> EndpointRow:
    base = {"variant": variant, "address": address, "proto": "tcp", "port": 443,
            "packets_out": 3, "packets_in": 2, "bytes_out": 300, "bytes_in": 200,
            "first_seen": 1.7e9, "last_seen": 1.7e9 + 1}
    return EndpointRow.from_json(base | kw)


def placed(places: dict[str, dict[str, Any]]) -> dict[str, Placement]:
    """Places as analysis/endpoints.json writes them, read back."""
    return {address: Placement.from_json(p) for address, p in places.items()}


PLACES = {
    "203.0.113.15": {"special": None, "country": "CN", "country_name": "China",
                     "database": "lab.mmdb (2026-11-26)", "stands_for": "211.100.40.15"},
    "198.51.100.39": {"special": None, "country": "US", "country_name": "United States",
                      "database": "lab.mmdb (2026-11-26)", "stands_for": "64.4.21.39"},
    "239.255.255.250": {"special": "multicast", "country": None},
    "198.51.100.99": {"special": None, "country": None},
}


def facts(endpoints, capture=GOOD_CAPTURE, failed=()) -> RunFacts:
    """``failed``: (variant, action, error) of actions that failed; every variant logged in."""
    logins = tuple(Event.from_json({"variant": v, "action": "login", "outcome": "ok"})
                   for v in ("regular", "tom-en", "tom-zh"))
    events = logins + tuple(Event.from_json({"variant": v, "action": a, "outcome": "failed",
                                             "error": err}) for v, a, err in failed)
    return RunFacts(endpoints=tuple(endpoints), places=placed(PLACES),
                    capture=CaptureCounts.from_json(capture), geoip=DB, events=events)


def test_never_reaches_passes_on_a_complete_capture_with_evidence_of_traffic():
    v = evaluate(NEVER_CN, facts([endpoint("regular", "198.51.100.39"),
                                  endpoint("regular", "239.255.255.250", proto="udp")]))
    assert v.status == PASS
    assert "none in CN" in v.reason and "US" in v.reason
    assert v.evidence[0]["endpoints"] == 2
    assert v.geoip == DB


def test_never_reaches_fails_with_the_flow_as_evidence():
    v = evaluate(NEVER_CN, facts([endpoint("regular", "203.0.113.15")]))
    assert v.status == FAIL
    assert v.reason.startswith("regular reached CN: 203.0.113.15 (stands for 211.100.40.15): "
                               "China per lab (2026-11-26); tcp/443 before the first action")
    assert v.evidence[0]["address"] == "203.0.113.15"
    assert v.evidence[0]["stands_for"] == "211.100.40.15"


def test_sentence_names_the_action_and_every_agreeing_database():
    places = PLACES | {"203.0.113.15": PLACES["203.0.113.15"] | {
        "names": ["srv-211-100-40-15.cn.lab.example"],
        "views": [{"database": "lab.mmdb (2026-11-26)", "address": "203.0.113.15",
                   "country": "CN"},
                  {"database": "GeoLite2-City.mmdb (2019-12-24)", "address": "211.100.40.15",
                   "country": "CN"},
                  {"database": "dbip.mmdb (2023-04-01)", "address": "211.100.40.15",
                   "country": "CN"}]}}
    f = RunFacts(endpoints=(endpoint("tom-en", "203.0.113.15"),
                            endpoint("tom-en", "203.0.113.15", port=80)),
                 places=placed(places), capture=CaptureCounts.from_json(GOOD_CAPTURE),
                 geoip=DB,
                 events=(Event.from_json({"variant": "tom-en", "action": "login",
                                          "start": 1.7e9 - 1, "end": 1.7e9 + 5}),))
    v = evaluate(REACHES_CN, f)
    assert v.reason == (
        "tom-en reached CN: 203.0.113.15 (stands for 211.100.40.15; "
        "srv-211-100-40-15.cn.lab.example): China per lab (2026-11-26), GeoLite2-City "
        "(2019-12-24) and dbip (2023-04-01); tcp/443 during login, first at 22:13:20 UTC")


def test_databases_that_disagree_make_a_negative_claim_inconclusive():
    places = PLACES | {"198.51.100.39": PLACES["198.51.100.39"] | {
        "views": [{"database": "lab.mmdb (2026-11-26)", "address": "198.51.100.39",
                   "country": "US"},
                  {"database": "other.mmdb (2025-01-01)", "address": "64.4.21.39",
                   "country": "CN"}]}}
    f = RunFacts(endpoints=(endpoint("regular", "198.51.100.39"),), places=placed(places),
                 capture=CaptureCounts.from_json(GOOD_CAPTURE), geoip=DB,
                 events=facts([]).events)
    v = evaluate(NEVER_CN, f)
    assert v.status == INCONCLUSIVE
    assert v.reason == ("the databases disagree: other (2025-01-01) places 64.4.21.39 "
                        "(for 198.51.100.39) in CN, lab (2026-11-26) in US")


def test_another_variants_china_traffic_does_not_count():
    v = evaluate(NEVER_CN, facts([endpoint("regular", "198.51.100.39"),
                                  endpoint("tom-en", "203.0.113.15")]))
    assert v.status == PASS


def test_empty_capture_is_inconclusive_never_pass():
    v = evaluate(NEVER_CN, facts([]))
    assert v.status == INCONCLUSIVE
    assert "no traffic of regular was captured" in v.reason


def test_dropped_packets_make_a_negative_claim_inconclusive():
    v = evaluate(NEVER_CN, facts([endpoint("regular", "198.51.100.39")],
                                 capture=GOOD_CAPTURE | {"dropped": 7}))
    assert v.status == INCONCLUSIVE and "dropped 7 packets" in v.reason


def test_unclean_capture_stop_is_inconclusive():
    v = evaluate(NEVER_CN, facts([endpoint("regular", "198.51.100.39")],
                                 capture={"complete": False}))
    assert v.status == INCONCLUSIVE and "incomplete" in v.reason


def test_failed_login_makes_a_negative_claim_inconclusive():
    v = evaluate(NEVER_CN, facts([endpoint("regular", "198.51.100.39")],
                                 failed=[("regular", "login", "image not found")]))
    assert v.status == INCONCLUSIVE and "login failed" in v.reason


def test_unplaced_endpoint_cannot_be_ruled_out():
    v = evaluate(NEVER_CN, facts([endpoint("regular", "198.51.100.99")]))
    assert v.status == INCONCLUSIVE and "could not be placed: 198.51.100.99" in v.reason


def test_reaches_passes_on_evidence_even_after_a_failed_action():
    v = evaluate(REACHES_CN, facts([endpoint("tom-en", "203.0.113.15")],
                                   failed=[("tom-en", "chat_send", "relay refused")]))
    assert v.status == PASS and v.evidence[0]["country"] == "CN"


def test_reaches_without_evidence_fails_or_is_inconclusive():
    only_us = [endpoint("tom-en", "198.51.100.39")]
    assert evaluate(REACHES_CN, facts(only_us)).status == FAIL
    v = evaluate(REACHES_CN, facts(only_us, failed=[("tom-en", "login", "timed out")]))
    assert v.status == INCONCLUSIVE and "cannot rule it out" in v.reason


def test_multicast_is_never_a_place():
    place = Expectation.from_json(
        {"id": "m", "variant": "regular", "kind": "reaches", "place": {"country": "IE"}})
    v = evaluate(place, facts([endpoint("regular", "239.255.255.250", proto="udp")]))
    assert v.status == FAIL


def test_only_reaches_is_data_residency():
    only = Expectation.from_json({"id": "o", "variant": "regular", "kind": "only_reaches",
                                  "place": {}, "places": [{"country": "US"}, {"country": "EE"}]})
    ok = facts([endpoint("regular", "198.51.100.39"),
                endpoint("regular", "239.255.255.250", proto="udp")])
    v = evaluate(only, ok)
    assert v.status == PASS and "all in US or EE" in v.reason
    out = facts([endpoint("regular", "198.51.100.39"), endpoint("regular", "203.0.113.15")])
    v = evaluate(only, out)
    assert v.status == FAIL and v.reason.startswith("regular reached places outside US or EE: "
                                                    "203.0.113.15")
    assert evaluate(only, facts([endpoint("regular", "198.51.100.99")])).status == INCONCLUSIVE


def test_an_unknown_kind_is_a_defect_never_a_silent_pass():
    odd = Expectation.from_json({"id": "odd", "variant": "regular", "place": {"country": "CN"}})
    with pytest.raises(ValueError, match="unknown kind of expectation ''"):
        evaluate(odd, facts([endpoint("regular", "198.51.100.39")]))
