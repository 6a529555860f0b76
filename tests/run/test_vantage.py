"""The vantage of a variant in ``manifest.json`` and the ``route-down`` events: round trips and
the sentences the report and verdicts use."""

from __future__ import annotations

import pytest

from testbed.run import Event, Manifest
from testbed.run.vantage import ROUTE_DOWN, RouteDown, Vantage, route_downs

CN = Vantage(route="vpn", label="vpn cn-shanghai.conf", egress="203.0.113.80",
             egress_from="tunnel config (peer endpoint)", country="CN", asn=4134,
             resolver="10.99.0.1")


@pytest.mark.parametrize("vantage,sentence", [
    (CN, "measured from CN, AS4134, via vpn cn-shanghai.conf"),
    (Vantage(route="vpn", label="vpn x.conf", egress="192.0.2.1"),
     "measured from 192.0.2.1, via vpn x.conf"),
    (Vantage(route="vpn", label="vpn x.conf"), "measured from an unknown place, via vpn x.conf"),
    (Vantage(route="internet", label="internet eth1", country="DE"),
     "measured from DE, via internet eth1"),
    (Vantage(), "measured from the lab's simulated internet"),
    (Vantage(route="drop", label="drop"), "measured with route drop (nothing left the lab)"),
])
def test_the_sentence_says_what_is_known(vantage, sentence):
    assert vantage.sentence() == sentence


def test_the_manifest_keeps_each_variants_vantage():
    m = Manifest(run_id="r").updated(vantage={"cn": CN.to_json(), "home": Vantage().to_json()})
    again = Manifest.from_json(m.to_json())
    assert again.vantage == {"cn": CN, "home": Vantage()}


def test_an_older_manifest_has_no_vantage():
    assert Manifest.from_json({"run_id": "r"}).vantage == {}
    assert "vantage" not in Manifest(run_id="r").to_json()


def test_a_route_down_is_one_event_per_variant_and_read_back_first_first():
    down = RouteDown("vpn x.conf", 1000.0, "wireguard-go exited", ("a", "b"))
    events = [Event.from_json(e.to_json()) for e in down.events()]
    assert [e.variant for e in events] == ["a", "b"]
    assert all(e.action == ROUTE_DOWN and not e.timed for e in events)
    later = RouteDown("vpn x.conf", 2000.0, "again", ("a",)).events()
    found = route_downs([*events, *later])
    assert found["a"][0] == 1000.0
    assert "route vpn x.conf died at 00:16:40 UTC (wireguard-go exited)" in found["a"][1]


@pytest.mark.parametrize("vantage,details", [
    (CN, "egress 203.0.113.80 (tunnel config (peer endpoint)), resolver 10.99.0.1"),
    (Vantage(route="internet", label="internet eth1", egress="192.0.2.9",
             egress_from="echo http://x/ip", resolver="192.0.2.53", resolver_country="DE",
             resolver_asn=3320),
     "egress 192.0.2.9 (echo http://x/ip), resolver 192.0.2.53 (DE, AS3320)"),
    (Vantage(), ""),
])
def test_the_details_name_the_egress_and_the_resolver(vantage, details):
    assert vantage.details() == details
