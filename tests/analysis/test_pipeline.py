"""pcap -> endpoints -> geo (a written mmdb, read through geoip2) -> seed table."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from testbed.analysis import (
    Geo,
    MapEntry,
    extract_endpoints,
    format_table,
    seed_table,
    write_mmdb,
)
from testbed.analysis.classify import classify

from . import pcapbuild as pb

T0 = 1_700_000_000.0


def test_pipeline(tmp_path: Path) -> None:
    frames = []
    for i, (src, dst, proto, sp, dp) in enumerate(
        [
            ("10.0.0.2", "203.0.113.10", "tcp", 50000, 443),
            ("10.0.0.3", "203.0.113.10", "tcp", 50001, 443),
            ("10.0.0.3", "198.51.100.5", "tcp", 50002, 443),
            ("10.0.0.3", "239.255.255.250", "udp", 50003, 1900),
            ("fd00::3", "2001:db8:86::1", "udp", 50004, 3478),
        ]
    ):
        frames.append(pb.Frame(T0 + i, pb.sll(pb.packet(src, dst, proto, sp, dp))))
    cap = pb.write(tmp_path / "gw.pcap", pb.pcap_bytes(frames, pb.SLL))
    db = write_mmdb(
        tmp_path / "lab.mmdb",
        [
            MapEntry("203.0.113.0/24", "CN", "China"),
            MapEntry("198.51.100.0/24", "US", "United States"),
            MapEntry("2001:db8:86::/48", "CN", "China"),
            MapEntry("239.0.0.0/8", "ZZ", "Nowhere"),  # must never be used for multicast
        ],
    )
    lab = [
        ipaddress.ip_network(n) for n in ("203.0.113.0/24", "198.51.100.0/24", "2001:db8:86::/48")
    ]
    report = extract_endpoints(
        cap, {"10.0.0.2": "regular", "10.0.0.3": "tom-zh", "fd00::3": "tom-zh"}
    )
    with Geo([db]) as geo:
        rows = seed_table(report, ["regular", "tom-zh"], geo.place, lambda a: classify(a, lab), {})
        assert geo.provenance()[0]["sha256"]
    assert [(r.address, r.country, r.marks["regular"], r.marks["tom-zh"]) for r in rows] == [
        ("203.0.113.10", "CN", "x", "x"),
        ("2001:db8:86::1", "CN", "", "x"),
        ("198.51.100.5", "US", "", "x"),
        ("239.255.255.250", "[multicast]", "", "x"),
    ]
    print(format_table(rows, ["regular", "tom-zh"]))
