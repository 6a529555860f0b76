"""A route that died, or a ``drop`` route, is a doubt about the variant's traffic from that
moment on (``RunFacts.route_doubts``): every kind of claim, the route dying before or after the
claim's time; and the verdict's sentence says where the variant was measured from."""

from __future__ import annotations

from dataclasses import replace

import pytest

from testbed.run.vantage import RouteDown, Vantage
from testbed.verdicts import FAIL, INCONCLUSIVE, PASS, evaluate
from tests.verdicts.test_evidence_rule import KINDS_OF_CLAIM, NEGATIVE, T0, claim, complete_run

CHAT_KINDS = {"passes_through", "does_not_pass_through", "delivered", "not_delivered"}


def died(at: float, variants: tuple[str, ...] = ("regular", "control")):
    facts = complete_run()
    down = RouteDown("vpn cn.conf", at, "wireguard-go exited", variants)
    return replace(facts, events=facts.events + tuple(down.events()))


def test_the_baseline_settles_every_claim():
    for kind in KINDS_OF_CLAIM:
        assert evaluate(claim(kind), complete_run()).status in (PASS, FAIL)


TRAFFIC_KINDS = [k for k in KINDS_OF_CLAIM if k not in ("delivered", "not_delivered")]


@pytest.mark.parametrize("kind", TRAFFIC_KINDS)
def test_a_route_that_died_during_the_claims_time_leaves_no_pass_on_absence(kind):
    v = evaluate(claim(kind), died(T0 + 5))
    base = evaluate(claim(kind), complete_run())
    if base.evidence and base.status in (PASS, FAIL) and v.status == base.status and \
            (kind not in NEGATIVE or base.status == FAIL):
        return  # settled on evidence: the death changes nothing
    assert v.status == INCONCLUSIVE, v.reason
    assert "route vpn cn.conf died at" in v.reason


@pytest.mark.parametrize("kind", ["delivered", "not_delivered"])
def test_delivery_is_judged_on_screen_whatever_the_route(kind):
    assert evaluate(claim(kind), died(T0 + 5)).status == \
        evaluate(claim(kind), complete_run()).status


@pytest.mark.parametrize("until,doubted", [(T0 + 4, False), (T0 + 5, False), (T0 + 6, True),
                                           (float("inf"), True)])
def test_only_traffic_after_the_death_is_in_doubt(until, doubted):
    facts = died(T0 + 5)
    assert bool(facts.route_doubts("regular", until)) is doubted
    assert bool(facts.doubts("regular", until)) is doubted
    assert facts.doubts("regular", until, capture=False) == []


@pytest.mark.parametrize("kind", ["never_reaches", "only_reaches"])
def test_a_death_of_another_variants_route_is_no_doubt(kind):
    assert evaluate(claim(kind), died(T0 + 5, ("control",))).status == PASS


def test_a_death_is_no_failed_action():
    assert died(T0 + 5).failed_actions == {}


@pytest.mark.parametrize("kind", sorted(NEGATIVE - CHAT_KINDS))
def test_a_drop_route_makes_negative_reach_claims_inconclusive(kind):
    facts = replace(complete_run(), vantage={"regular": Vantage(route="drop", label="drop")})
    v = evaluate(claim(kind), facts)
    assert v.status == INCONCLUSIVE
    assert "route is drop" in v.reason


@pytest.mark.parametrize("vantage,suffix", [
    ({"regular": Vantage(route="vpn", label="vpn cn.conf", country="CN", asn=4134)},
     " (measured from CN, AS4134, via vpn cn.conf)"),
    ({"regular": Vantage(), "control": Vantage(route="vpn", label="vpn x.conf")},
     " (measured from the lab's simulated internet)"),
    ({"regular": Vantage(), "control": Vantage()}, ""),
    ({}, ""),
])
def test_the_sentence_says_where_the_variant_was_measured_from(vantage, suffix):
    plain = evaluate(claim("never_reaches"), complete_run())
    v = evaluate(claim("never_reaches"), replace(complete_run(), vantage=vantage))
    assert v.reason == plain.reason + suffix
