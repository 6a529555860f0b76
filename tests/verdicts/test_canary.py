"""Canary verdicts: where the run's canary went, whichever action typed it (a browser's form)."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.capture.outcomes import classify
from testbed.run import (
    CaptureCounts,
    ChatEvidence,
    EndpointRow,
    Event,
    Expectation,
    Placement,
    TlsRecord,
)
from testbed.verdicts import FAIL, INCONCLUSIVE, PASS, RunFacts, Verdict, evaluate

from ..capture.tls_events import pair

CANARY = "CANARY-f00d"
CN, DE, NOWHERE = "203.0.113.80", "198.51.100.80", "198.51.100.99"
PLACES = {CN: {"country": "CN", "names": ["www.cn.lab.example"], "views": []},
          DE: {"country": "DE", "names": ["www.de.lab.example"], "views": []},
          NOWHERE: {"views": []}}
GOOD = {"captured": 100, "dropped": 0, "complete": True}


def action(name: str, start: float, outcome: str = "ok", **params: str) -> dict[str, Any]:
    return {"variant": "browser", "action": name, "outcome": outcome, "start": start,
            "end": start + 1, "params": params,
            "error": None if outcome == "ok" else "image thanks.png not found"}


OPEN = action("open", 1.0, url="https://www.de.lab.example/")
SUBMIT = action("submit", 10.0, text=CANARY)


def hit(address: str, t: float = 10.5, variant: str = "browser") -> ChatEvidence:
    return ChatEvidence(kind="canary-decrypted", variant=variant, address=address, port=443,
                        proto="tcp", time=t, strength="strong",
                        detail=f"canary {CANARY!r} found in 1 decrypted flow (URL)")


def facts(events=(OPEN, SUBMIT), hits=(), capture=GOOD, tls=(), heard=(DE, CN)) -> RunFacts:
    return RunFacts(endpoints=tuple(EndpointRow.from_json(
                        {"variant": "browser", "address": a, "proto": "tcp", "port": 443})
                        for a in heard),
                    places={a: Placement.from_json(p) for a, p in PLACES.items()},
                    capture=CaptureCounts.from_json(capture), geoip=(),
                    events=tuple(Event.from_json(e) for e in events), canary=CANARY,
                    canary_hits=tuple(hits),
                    tls=classify(TlsRecord.from_json(p) for p in tls))


def check(kind: str, country: str, f: RunFacts) -> Verdict:
    return evaluate(Expectation.from_json({"id": "x", "variant": "browser", "kind": kind,
                                           "place": {"country": country}}), f)


# (hits, kind, country) -> status, on a clean run whose browser typed the canary
CASES = [
    ((CN,), "canary_reaches", "CN", PASS),
    ((CN,), "canary_reaches", "DE", FAIL),
    ((CN,), "canary_never_reaches", "DE", PASS),
    ((CN,), "canary_never_reaches", "CN", FAIL),
    ((CN, DE), "canary_never_reaches", "DE", FAIL),
    ((), "canary_reaches", "CN", FAIL),
    ((), "canary_never_reaches", "CN", PASS),
]


@pytest.mark.parametrize(("hits", "kind", "country", "status"), CASES)
def test_a_canary_hit_decides_on_a_complete_capture(hits, kind, country, status):
    v = check(kind, country, facts(hits=[hit(a) for a in hits]))
    assert v.status == status, v.reason
    if status == PASS and kind == "canary_reaches":
        assert v.reason.startswith(f"browser's canary reached {country}: "
                                   "canary-decrypted on"), v.reason
        assert v.evidence[0]["country"] == country
    if status == PASS and kind == "canary_never_reaches":
        assert "never reached" in v.reason, v.reason


def test_another_variants_hit_is_not_this_ones():
    v = check("canary_reaches", "CN", facts(hits=[hit(CN, variant="other")]))
    assert v.status == FAIL and "never reached" in v.reason, v.reason


BAD_RUNS = {
    "no canary typed": ({"events": (OPEN,)}, "did not send the run's canary: no action"),
    "the typing failed": ({"events": (OPEN, action("submit", 10.0, "failed", text=CANARY))},
                          "submit failed: image thanks.png not found"),
    "lossy capture": ({"capture": {"captured": 100, "dropped": 3, "complete": True}},
                      "the capture dropped 3 packets"),
    "silent browser": ({"heard": ()}, "no traffic of browser was captured"),
    "unplaced hit": ({"hits": [hit(NOWHERE)]}, "endpoints could not be placed"),
    "pinned TLS after typing": ({"tls": pair("10.77.0.10", "www.cn.lab.example", 10.2,
                                             "client refused", "ok")},
                                "TLS to www.cn.lab.example could not be opened"),
}


@pytest.mark.parametrize("kind", ["canary_reaches", "canary_never_reaches"])
@pytest.mark.parametrize("case", sorted(BAD_RUNS))
def test_absence_on_a_run_that_cannot_show_it_is_inconclusive(case, kind):
    changes, why = BAD_RUNS[case]
    v = check(kind, "DE", facts(**changes))
    assert v.status == INCONCLUSIVE and why in v.reason, v.reason


def test_tls_left_unopened_before_the_canary_was_typed_does_not_hide_it():
    tls = pair("10.77.0.10", "www.cn.lab.example", 2.0, "client refused", "ok")
    v = check("canary_never_reaches", "DE", facts(hits=[hit(CN)], tls=tls))
    assert v.status == PASS, v.reason
