"""`testbed geo lookup`: table, --json, special addresses, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.analysis.geo import MapEntry, write_mmdb
from testbed.cli import main

from .conftest import ASN_MAP, EPOCH

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dbs(tmp_path: Path) -> list[Path]:
    a = write_mmdb(tmp_path / "a.mmdb",
                   [MapEntry("8.8.8.0/24", "US", "United States", "Mountain View"),
                    MapEntry("223.5.5.0/24", "CN", "China", "Hangzhou")],
                   database_type="Test-City", build_epoch=EPOCH)
    b = write_mmdb(tmp_path / "b.mmdb",
                   [MapEntry("8.8.0.0/16", "US", "United States"),
                    MapEntry("223.5.0.0/16", "HK", "Hong Kong")], build_epoch=EPOCH)
    asn = write_mmdb(tmp_path / "asn.mmdb", ASN_MAP, database_type="GeoLite2-ASN",
                     build_epoch=EPOCH)
    return [a, b, asn]


def args(dbs: list[Path]) -> list[str]:
    return [x for d in dbs for x in ("--geoip", str(d))]


def test_table(dbs: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["geo", "lookup", *args(dbs), "8.8.8.8", "223.5.5.5", "239.255.255.250",
                 "9.9.9.9"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["ADDRESS", "COUNTRY", "CITY", "AS", "NETWORK", "DATABASE"]
    assert lines[1].split() == ["8.8.8.8", "US", "United", "States", "Mountain", "View", "-",
                                "8.8.8.0/24", "a.mmdb", "(2024-05-01)"]
    assert lines[2].split() == ["US", "United", "States", "-", "-", "8.8.0.0/16", "b.mmdb",
                                "(2024-05-01)"]
    assert lines[3].split() == ["-", "-", "AS15169", "GOOGLE", "8.8.8.0/24", "asn.mmdb",
                                "(2024-05-01)"]
    assert "  ! databases disagree on 223.5.5.5: CN per a.mmdb (2024-05-01); HK per b.mmdb " \
           "(2024-05-01)" in lines
    assert "239.255.255.250  [multicast] special-purpose address, not geolocated" in lines
    assert "! databases disagree on 8.8.8.8" not in out
    assert "(not in database)" in out  # 9.9.9.9
    assert "1 address(es) on which the databases disagree" in out


def test_json(dbs: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["geo", "lookup", "--json", *args(dbs), "223.5.5.5", "239.255.255.250"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["file"] for d in doc["databases"]] == [str(d) for d in dbs]
    assert all(len(d["sha256"]) == 64 and d["build_date"].startswith("2024-05-01")
               for d in doc["databases"])
    placed, special = doc["results"]
    assert special == {"address": "239.255.255.250", "special": "multicast", "placements": [],
                       "consensus": None}
    assert [p["iso_code"] for p in placed["placements"]] == ["CN", "HK", None]
    assert placed["placements"][0]["city"] == "Hangzhou"
    assert placed["placements"][2]["known"] is False
    assert placed["consensus"] == {"iso_code": None, "disagree": True, "countries": ["CN", "HK"]}


def test_special_addresses_are_never_geolocated(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # a database that (wrongly) places multicast and private space must not be asked
    db = write_mmdb(tmp_path / "m.mmdb", [MapEntry("224.0.0.0/4", "ZZ", "Nowhere"),
                                          MapEntry("10.0.0.0/8", "ZZ", "Nowhere")])
    assert main(["geo", "lookup", "--json", "--geoip", str(db), "239.255.255.250", "10.1.2.3",
                 "ff02::fb"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [(r["special"], r["placements"]) for r in results] == [
        ("multicast", []), ("private", []), ("multicast", [])]


def test_bundled_databases_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["geo", "lookup", "8.8.8.8"]) == 0
    out = capsys.readouterr().out
    assert "dbip-city-lite-latest.mmdb (2023-04-01)" in out
    assert "GeoLite2-City.mmdb (2019-12-24)" in out
    assert "AS15169 Google LLC" in out and "(2026-06-17)" in out  # ip-location-db's ASN
    assert "RouteViews" in out  # its attribution
    assert "IP Geolocation by DB-IP" in out and "GeoLite2 data created by MaxMind" in out
    assert "disagree" not in out


def test_errors_are_one_line_exit_2(dbs: list[Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"no database here" * 50)

    def run(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "testbed", "geo", "lookup", *a], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)

    for argv, message in (
        ((*args(dbs), "8.8.8.8", "1.2.3"), "not an IP address: '1.2.3'"),
        (("--geoip", str(tmp_path / "missing.mmdb"), "8.8.8.8"), "no such GeoIP database"),
        (("--geoip", str(junk), "8.8.8.8"), "cannot open GeoIP database"),
    ):
        out = run(*argv)
        assert out.returncode == 2, out
        assert out.stdout == ""
        assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
        assert out.stderr.startswith("testbed: geo lookup: ")
