from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed._errors import CaptureFormatError
from testbed.analysis.endpoints import EndpointReport, by_address, extract_endpoints

from . import pcapbuild as pb

T0 = 1_700_000_000.0
GUESTS = {"10.0.0.2": "regular", "10.0.0.3": "tom-zh", "fd00::3": "tom-zh"}
GATEWAY = "10.0.0.1"


def frame(ts: float, src: str, dst: str, proto: str, sp: int = 0, dp: int = 0, wire: int = 0):
    data = pb.ether(pb.packet(src, dst, proto, sp, dp, bytes(10)))
    return pb.Frame(ts, data, wire or len(data))


@pytest.fixture(params=["pcap", "pcapng", "pcap-sll"])
def capture(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    frames = [
        frame(T0 + 1, "10.0.0.2", "203.0.113.10", "tcp", 50000, 443, 100),
        frame(T0 + 2, "203.0.113.10", "10.0.0.2", "tcp", 443, 50000, 1500),
        frame(T0 + 3, "10.0.0.2", "203.0.113.10", "tcp", 50001, 443, 60),
        frame(T0 + 4, "10.0.0.3", "203.0.113.10", "tcp", 40000, 443, 70),
        frame(T0 + 5, "10.0.0.3", "239.255.255.250", "udp", 40001, 1900, 200),
        frame(T0 + 6, "fd00::3", "2001:db8::86", "udp", 40002, 8000, 90),
        frame(T0 + 7, "2001:db8::86", "fd00::3", "udp", 8000, 40002, 95),
        frame(T0 + 8, "10.0.0.2", GATEWAY, "udp", 5353, 53, 80),
        frame(T0 + 9, GATEWAY, "10.0.0.2", "udp", 53, 5353, 120),
        frame(T0 + 10, "198.51.100.1", "198.51.100.2", "icmp"),  # nobody's
        frame(T0 + 11, "10.0.0.2", "198.51.100.9", "icmp", wire=98),
        pb.Frame(T0 + 12, pb.arp()),
    ]
    if request.param == "pcapng":
        return pb.write(
            tmp_path / "cap.pcapng", pb.pcapng_bytes([(pb.ETH, 9)], [(0, f) for f in frames])
        )
    if request.param == "pcap-sll":
        for f in frames:  # Ethernet header -> SLL header; the ARP frame stays non-IP
            f.data = b"\x00\x00\x00\x01\x00\x06" + f.data[6:12] + b"\x00\x00" + f.data[12:]
        return pb.write(tmp_path / "cap.pcap", pb.pcap_bytes(frames, pb.SLL))
    return pb.write(tmp_path / "cap.pcap", pb.pcap_bytes(frames))


def test_attribution_counts_bytes_and_times(capture: Path) -> None:
    r = extract_endpoints(capture, GUESTS, infrastructure=[GATEWAY])
    got = {(e.variant, e.address, e.proto, e.port): e for e in r.endpoints}
    assert set(got) == {
        ("regular", "203.0.113.10", "tcp", 443),
        ("regular", "198.51.100.9", "icmp", 0),
        ("tom-zh", "203.0.113.10", "tcp", 443),
        ("tom-zh", "239.255.255.250", "udp", 1900),
        ("tom-zh", "2001:db8::86", "udp", 8000),
    }
    e = got["regular", "203.0.113.10", "tcp", 443]
    assert (e.packets_out, e.packets_in, e.bytes_out, e.bytes_in) == (2, 1, 160, 1500)
    assert (e.first_seen, e.last_seen) == (T0 + 1, T0 + 3)
    assert (e.packets, e.bytes) == (3, 1660)
    v6 = got["tom-zh", "2001:db8::86", "udp", 8000]
    assert (v6.packets_out, v6.packets_in, v6.bytes_out, v6.bytes_in) == (1, 1, 90, 95)
    assert got["regular", "198.51.100.9", "icmp", 0].bytes_out == 98

    (dns,) = r.infrastructure
    assert (dns.variant, dns.address, dns.proto, dns.port) == ("regular", GATEWAY, "udp", 53)
    assert (dns.packets_out, dns.packets_in, dns.bytes_out, dns.bytes_in) == (1, 1, 80, 120)

    s = r.stats
    assert (s.frames_read, s.packets_read, s.frames_skipped) == (12, 11, 1)
    assert (s.packets_attributed, s.packets_infrastructure, s.packets_unattributed) == (8, 2, 1)
    assert (
        s.packets_read == s.packets_attributed + s.packets_infrastructure + s.packets_unattributed
    )
    assert s.warnings == []
    assert r.variants == ["regular", "tom-zh"]


def test_without_infrastructure_dns_is_an_endpoint(capture: Path) -> None:
    r = extract_endpoints(capture, GUESTS)
    assert r.infrastructure == []
    assert any(e.address == GATEWAY and e.port == 53 for e in r.endpoints)


def test_json_roundtrip_and_by_address(capture: Path) -> None:
    r = extract_endpoints(capture, GUESTS, [GATEWAY])
    data = json.loads(json.dumps(r.to_json()))
    assert EndpointReport.from_json(data) == r
    idx = by_address(r)
    assert set(idx["203.0.113.10"]) == {"regular", "tom-zh"}
    assert [e.port for e in idx["203.0.113.10"]["regular"]] == [443]
    assert GATEWAY not in idx


def test_guest_to_guest_counts_once(tmp_path: Path) -> None:
    path = pb.write(
        tmp_path / "g.pcap", pb.pcap_bytes([frame(T0, "10.0.0.2", "10.0.0.3", "udp", 1, 2)])
    )
    r = extract_endpoints(path, GUESTS)
    assert r.stats.packets_attributed == 1
    assert {(e.variant, e.address, e.packets_out, e.packets_in) for e in r.endpoints} == {
        ("regular", "10.0.0.3", 1, 0),
        ("tom-zh", "10.0.0.2", 0, 1),
    }


def test_truncated_capture_reports_warning(capture: Path) -> None:
    data = capture.read_bytes()
    capture.write_bytes(data[:-10])
    r = extract_endpoints(capture, GUESTS, [GATEWAY])
    assert len(r.stats.warnings) == 1 and "truncated" in r.stats.warnings[0]
    assert r.stats.frames_read == 11


def test_not_a_capture(tmp_path: Path) -> None:
    with pytest.raises(CaptureFormatError):
        extract_endpoints(pb.write(tmp_path / "x.pcap", b"garbage!" * 8), GUESTS)
