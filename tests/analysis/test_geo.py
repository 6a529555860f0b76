from __future__ import annotations

import hashlib
from pathlib import Path

import geoip2.database
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from testbed._errors import AnalysisError
from testbed.analysis.geo import Geo, MapEntry, write_mmdb

EPOCH = 1_714_521_600  # 2024-05-01T00:00:00Z

MAP = [
    MapEntry("203.0.113.0/25", "CN", "China"),
    MapEntry("203.0.113.128/25", "US", "United States"),
    MapEntry("198.51.100.0/24", "DE", "Germany"),
    MapEntry("2001:db8:86::/48", "CN", "China"),
]


@pytest.fixture
def mmdb(tmp_path: Path) -> Path:
    return write_mmdb(tmp_path / "lab.mmdb", MAP, build_epoch=EPOCH)


def test_roundtrip_through_geoip2(mmdb: Path) -> None:
    with geoip2.database.Reader(str(mmdb)) as r:
        assert r.metadata().database_type == "Testbed-Lab-Country"
        assert r.country("203.0.113.5").country.iso_code == "CN"
        assert r.country("203.0.113.200").country.name == "United States"
        assert r.country("198.51.100.77").country.iso_code == "DE"
        assert r.country("2001:db8:86::1").country.iso_code == "CN"


def test_place_and_provenance(mmdb: Path) -> None:
    with Geo([mmdb]) as geo:
        p = geo.place("203.0.113.5")
        assert (p.iso_code, p.country_name, p.network) == ("CN", "China", "203.0.113.0/25")
        assert p.database == "lab.mmdb (2024-05-01)"
        assert geo.place("2001:db8:86::abcd").iso_code == "CN"
        missing = geo.place("192.0.2.1")
        assert missing.iso_code is None and missing.database is None
        (prov,) = geo.provenance()
        assert prov["sha256"] == hashlib.sha256(mmdb.read_bytes()).hexdigest()
        assert prov["build_epoch"] == EPOCH
        assert prov["build_date"] == "2024-05-01T00:00:00+00:00"
        assert prov["database_type"] == "Testbed-Lab-Country"
        assert prov["file"] == str(mmdb)


def test_cache_per_network(mmdb: Path) -> None:
    geo = Geo(mmdb)
    calls = []
    reader = geo._readers[0][0]
    orig = reader.country

    def counting(ip: str):  # type: ignore[no-untyped-def]
        calls.append(ip)
        return orig(ip)

    reader.country = counting  # type: ignore[method-assign,assignment]
    assert geo.place("203.0.113.1").iso_code == "CN"
    assert geo.place("203.0.113.2").iso_code == "CN"
    assert geo.place("203.0.113.2").address == "203.0.113.2"
    assert geo.place("203.0.113.129").iso_code == "US"
    assert geo.place("192.0.2.1").iso_code is None
    assert geo.place("192.0.2.2").iso_code is None  # not-found network cached too
    assert calls == ["203.0.113.1", "203.0.113.129", "192.0.2.1"]
    geo.close()


def test_first_database_wins_then_fallback(tmp_path: Path) -> None:
    a = write_mmdb(tmp_path / "a.mmdb", [MapEntry("203.0.113.0/24", "CN", "China")])
    b = write_mmdb(
        tmp_path / "b.mmdb",
        [
            MapEntry("203.0.113.0/24", "US", "United States"),
            MapEntry("192.0.2.0/24", "FR", "France"),
        ],
    )
    with Geo([a, b]) as geo:
        assert geo.place("203.0.113.1").iso_code == "CN"
        p = geo.place("192.0.2.1")
        assert p.iso_code == "FR" and p.database is not None and p.database.startswith("b.mmdb")
        assert [d["file"] for d in geo.provenance()] == [str(a), str(b)]


def test_city_database_uses_city(tmp_path: Path) -> None:
    w = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="Test-City",
        languages=["en"],
        description={"en": "t"},
    )
    w.insert_network(
        IPSet(["203.0.113.0/24"]),
        {
            "country": {"iso_code": "CN", "names": {"en": "China"}},
            "city": {"names": {"en": "Beijing"}},
        },
    )
    path = tmp_path / "city.mmdb"
    w.to_db_file(str(path))
    with Geo([path]) as geo:
        assert geo.place("203.0.113.7").iso_code == "CN"


def test_errors(tmp_path: Path, mmdb: Path) -> None:
    with pytest.raises(AnalysisError, match="cannot open"):
        Geo([tmp_path / "missing.mmdb"])
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a database" * 10)
    with pytest.raises(AnalysisError, match="cannot open") as info:
        Geo([junk])
    assert info.value.__cause__ is not None
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="Test-ASN")
    w.insert_network(IPSet(["203.0.113.0/24"]), {"autonomous_system_number": 1})
    asn = tmp_path / "asn.mmdb"
    w.to_db_file(str(asn))
    with pytest.raises(AnalysisError, match="Test-ASN"):
        Geo([asn])
    with Geo(mmdb) as geo, pytest.raises(AnalysisError, match="not an IP"):
        geo.place("nope")


def test_write_mmdb_validation(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="Country"):
        write_mmdb(tmp_path / "x.mmdb", MAP, database_type="Lab-City")
    with pytest.raises(AnalysisError, match="not a network"):
        write_mmdb(tmp_path / "x.mmdb", [MapEntry("300.1.1.0/24", "CN", "China")])
    with pytest.raises(AnalysisError, match="twice"):
        write_mmdb(
            tmp_path / "x.mmdb",
            [
                MapEntry("192.0.2.0/24", "CN", "China"),
                MapEntry("192.0.2.0/24", "US", "United States"),
            ],
        )
    assert not (tmp_path / "x.mmdb").exists()


def test_more_specific_entry_overrides(tmp_path: Path) -> None:
    path = write_mmdb(
        tmp_path / "o.mmdb",
        [MapEntry("203.0.113.64/26", "JP", "Japan"), MapEntry("203.0.113.0/24", "CN", "China")],
    )
    with Geo(path) as geo:
        assert geo.place("203.0.113.70").iso_code == "JP"
        assert geo.place("203.0.113.1").iso_code == "CN"
