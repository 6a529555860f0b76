"""Claims that name a TLS outcome (expectation ``tls``): judged on the outcomes decided by
difference, never on a connection that could not be classified."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.capture.outcomes import classify
from testbed.run import CaptureCounts, EndpointRow, Event, Expectation, Placement, TlsRecord
from testbed.verdicts import FAIL, INCONCLUSIVE, PASS, RunFacts, evaluate

from ..capture.tls_events import pair

APP, OTHER = "10.77.0.20", "10.77.0.21"
US = "198.51.100.39"
# outcome -> (what happened under interception, the retry without it)
MAKES = {"intercepted": ("established", "none"), "untrusted": ("client refused", "ok"),
         "broken": ("client refused", "failed"), "unclassified": ("client refused", "none")}


def facts(tls: list[dict[str, Any]], clients: dict[str, str] | None = None) -> RunFacts:
    return RunFacts(
        endpoints=(EndpointRow.from_json({"variant": "app", "address": US, "proto": "tcp",
                                          "port": 443}),),
        places={US: Placement.from_json({"country": "US", "views": []})},
        capture=CaptureCounts.from_json({"captured": 10, "dropped": 0, "complete": True}),
        geoip=(), events=(Event.from_json({"variant": "app", "action": "login", "outcome": "ok",
                                           "start": 1.0, "end": 2.0}),),
        tls=classify(TlsRecord.from_json(x) for x in tls),
        clients={"app": APP} if clients is None else clients)


def claim(word: str, kind: str = "reaches", country: str = "US") -> Expectation:
    return Expectation.from_json({"id": "t", "variant": "app", "kind": kind,
                                  "place": {"country": country}, "tls": word})


def lines(*outcomes: str, client: str = APP) -> list[dict[str, Any]]:
    """One host per outcome, for ``client``."""
    out = []
    for i, o in enumerate(outcomes):
        interception, retry = MAKES[o]
        out += pair(client, f"h{i}.example", 10.0 * i, interception, retry)
    return out


@pytest.mark.parametrize("hosts", [1, 3])
def test_an_app_that_refuses_our_ca_everywhere_is_untrusted_as_expected(hosts):
    v = evaluate(claim("untrusted"), facts(lines(*["untrusted"] * hosts)))
    assert v.status == PASS, v.reason
    assert f"TLS to {hosts} host(s) was untrusted" in v.reason


@pytest.mark.parametrize("other,first", [("intercepted", "pinned"), ("broken", "untrusted")])
def test_another_outcome_fails_the_claim(other, first):
    """An app that accepts our CA for one host did not merely lack it: its refusal elsewhere
    reads as pinned."""
    f = facts(lines("untrusted", other))
    assert [o.outcome for o in f.tls] == [first, other]
    v = evaluate(claim("untrusted"), f)
    assert v.status == FAIL and ", not untrusted" in v.reason, v.reason


def test_an_unclassified_connection_leaves_it_inconclusive():
    v = evaluate(claim("untrusted"), facts(lines("untrusted", "unclassified")))
    assert v.status == INCONCLUSIVE and "could not be classified" in v.reason, v.reason


def test_other_clients_do_not_count():
    v = evaluate(claim("untrusted"), facts(lines("untrusted") + lines("intercepted",
                                                                       client=OTHER)))
    assert v.status == PASS, v.reason


@pytest.mark.parametrize("tls,clients,why", [
    ([], None, "no TLS of app"),
    (lines("intercepted", client=OTHER), None, "no TLS of app"),
    (lines("untrusted"), {}, "gives no address for app"),
])
def test_without_its_connections_the_claim_is_inconclusive(tls, clients, why):
    v = evaluate(claim("untrusted"), facts(tls, clients))
    assert v.status == INCONCLUSIVE and why in v.reason, v.reason


def test_both_parts_of_the_claim_must_hold():
    good = facts(lines("intercepted"))
    assert evaluate(claim("intercepted"), good).status == PASS
    v = evaluate(claim("intercepted", country="CN"), good)  # never went to CN
    assert v.status == FAIL and "TLS:" in v.reason
    v = evaluate(claim("untrusted", kind="never_reaches", country="CN"), good)
    assert v.status == FAIL and "was intercepted, not untrusted" in v.reason
