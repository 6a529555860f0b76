from __future__ import annotations

import csv
import ipaddress
from pathlib import Path

from testbed.analysis.classify import classify
from testbed.analysis.endpoints import CaptureStats, Endpoint, EndpointReport
from testbed.analysis.geo import Placement
from testbed.analysis.table import format_table, seed_table, write_csv

VARIANTS = ["regular", "tom-en", "tom-zh"]
LAB = [ipaddress.ip_network("203.0.113.0/24"), ipaddress.ip_network("198.51.100.0/24")]
COUNTRIES = {
    "203.0.113.10": ("CN", "China"),
    "203.0.113.9": ("CN", "China"),
    "198.51.100.20": ("US", "United States"),
    "198.51.100.3": ("EE", "Estonia"),
}


def ep(variant: str, address: str, port: int = 443) -> Endpoint:
    return Endpoint(variant, address, "tcp", port, 1, 1, 100, 200, 1.0, 2.0)


def report() -> EndpointReport:
    eps = [
        ep("regular", "198.51.100.3"),
        ep("tom-zh", "203.0.113.10"),
        ep("tom-zh", "203.0.113.10", 80),
        ep("tom-en", "203.0.113.10"),
        ep("tom-zh", "203.0.113.9"),
        ep("regular", "198.51.100.20"),
        ep("tom-zh", "239.255.255.250", 1900),
        ep("regular", "192.0.2.77"),  # documentation, not on the lab map
        ep("tom-en", "203.0.113.200"),  # on the map, but no database knows it
        ep("other", "203.0.113.99"),  # variant not in the table
    ]
    return EndpointReport("cap.pcap", eps, [], CaptureStats())


def placements_recording(calls: list[str]):  # type: ignore[no-untyped-def]
    def place(address: str) -> Placement | None:
        calls.append(address)
        iso, name = COUNTRIES.get(address, (None, None))
        return Placement(address, iso, name, "lab.mmdb (2024-05-01)" if iso else None, None)

    return place


def table(calls: list[str]):  # type: ignore[no-untyped-def]
    return seed_table(
        report(),
        VARIANTS,
        placements_recording(calls),
        lambda a: classify(a, LAB),
        {"203.0.113.10": "111.221.29.1"},
    )


def test_rows_sorted_and_marked() -> None:
    calls: list[str] = []
    rows = table(calls)
    assert [(r.address, r.country) for r in rows] == [
        ("203.0.113.9", "CN"),
        ("203.0.113.10", "CN"),
        ("198.51.100.3", "EE"),
        ("198.51.100.20", "US"),
        ("192.0.2.77", "[documentation]"),
        ("239.255.255.250", "[multicast]"),
        ("203.0.113.200", "[unknown]"),
    ]
    cn = rows[1]
    assert cn.marks == {"regular": "", "tom-en": "x", "tom-zh": "x"}
    assert cn.stands_for == "111.221.29.1" and cn.country_name == "China"
    # Special addresses are never placed and never get a country.
    assert "239.255.255.250" not in calls and "192.0.2.77" not in calls
    mc = rows[5]
    assert mc.country_name == "" and mc.special == "multicast"


def test_csv_shape(tmp_path: Path) -> None:
    rows = table([])
    path = tmp_path / "t.csv"
    write_csv(rows, path, VARIANTS)
    with open(path, newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == ["address", "country", "country_name", "stands_for", "names", "asn",
                        "organization", "databases", *VARIANTS]
    assert len(lines) == 1 + len(rows)
    assert lines[2] == ["203.0.113.10", "CN", "China", "111.221.29.1", "", "", "", "", "", "x",
                        "x"]


def test_format_table() -> None:
    rows = table([])
    text = format_table(rows, VARIANTS)
    lines = text.splitlines()
    assert lines[0].split() == ["address", "country", "stands_for", "name", "databases",
                                "disagree", *VARIANTS]
    assert set(lines[1]) <= {"-", " "}
    assert len(lines) == 2 + len(rows)
    col = lines[0].index("country ")
    assert all(line[col:].startswith(r.country) for line, r in zip(lines[2:], rows, strict=True))
    assert format_table([], VARIANTS).splitlines()[0].startswith("address")
