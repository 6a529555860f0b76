from __future__ import annotations

import ipaddress

import pytest

from testbed._errors import AnalysisError
from testbed.analysis.classify import KINDS, classify, is_special


@pytest.mark.parametrize(
    "address, kind",
    [
        ("239.255.255.250", "multicast"),
        ("224.0.0.251", "multicast"),
        ("ff02::fb", "multicast"),
        ("ff0e::1", "multicast"),  # global-scope multicast: is_global says True
        ("10.1.2.3", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("100.64.0.1", "shared"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.1", "documentation"),
        ("203.0.113.1", "documentation"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("0.1.2.3", "this-network"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("198.18.0.1", "benchmarking"),
        ("2001:2::1", "benchmarking"),
        ("fd00::1", "unique-local"),
        ("fc00::1", "unique-local"),
        ("::ffff:8.8.8.8", "ipv4-mapped"),
        ("192.0.0.8", "ietf-protocol"),
        ("2001::1", "teredo"),
        ("100::1", "discard"),
        ("4000::1", "reserved"),
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("192.0.0.9", None),  # PCP anycast: globally reachable
        ("2001:4860:4860::8888", None),
        ("64:ff9b::808:808", None),
        ("2001:4:112::1", None),
    ],
)
def test_kinds(address: str, kind: str | None) -> None:
    assert classify(address) == kind
    assert is_special(address) == (kind is not None)
    if kind is not None:
        assert kind in KINDS


def test_is_global_disagrees_on_multicast() -> None:
    # Why we do not use ipaddress.is_global.
    assert ipaddress.ip_address("ff0e::1").is_global
    assert classify("ff0e::1") == "multicast"


def test_lab_networks_make_documentation_global() -> None:
    lab = [ipaddress.ip_network("203.0.113.0/24"), ipaddress.ip_network("2001:db8:1::/48")]
    assert classify("203.0.113.9", lab) is None
    assert classify("2001:db8:1::9", lab) is None
    assert classify("198.51.100.9", lab) == "documentation"  # not on the map
    assert classify("2001:db8:2::9", lab) == "documentation"
    assert classify("239.255.255.250", lab) == "multicast"


def test_invalid_address() -> None:
    with pytest.raises(AnalysisError, match="not an IP address"):
        classify("example.com")
