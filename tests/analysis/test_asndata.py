"""The bundled ASN database: the npm package @ip-location-db/asn's CSV files converted to a
GeoLite2-ASN-layout mmdb (a constructed package, a pinned download from a loopback server,
damaged packages, and the real bundled one)."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import io
import re
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed._errors import AnalysisError
from testbed.analysis.asndata import (
    ASN_DATABASE_TYPE,
    ASN_MEMBERS,
    ASN_VERSION,
    asn_database,
    build_epoch,
    convert,
    fetch_source,
)
from testbed.analysis.bundled import IP_LOCATION_DB_ATTRIBUTION
from testbed.analysis.geo import Geo

V4 = ("1.1.1.0,1.1.1.255,13335,\"Cloudflare, Inc.\"\n"
      "8.8.8.0,8.8.8.255,15169,Google LLC\n"
      "8.8.9.0,8.8.10.127,15169,Google LLC\n")  # not one CIDR: split into several
V6 = ("2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,15169,Google LLC\n"
      "2400:cb00::,2400:cb00:ffff:ffff:ffff:ffff:ffff:ffff,13335,\"Cloudflare, Inc.\"\n")


def package(path: Path, members: dict[str, str] | None = None) -> Path:
    """An npm package tarball holding `members` (default: the two small CSV files)."""
    members = members if members is not None else dict(zip(ASN_MEMBERS, (V4, V6), strict=True))
    with tarfile.open(path, "w:gz") as tf:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("asn")
    return convert(package(folder / "asn.tgz"), folder / "asn.mmdb")


@pytest.mark.parametrize(("address", "asn", "organization"), [
    ("1.1.1.1", 13335, "Cloudflare, Inc."), ("8.8.8.8", 15169, "Google LLC"),
    ("8.8.10.127", 15169, "Google LLC"), ("8.8.10.128", None, None), ("9.9.9.9", None, None),
    ("2001:4860:4860::8888", 15169, "Google LLC"),
    ("2400:cb00:2048:1::c629:d7a2", 13335, "Cloudflare, Inc."), ("2a00:1450::1", None, None)])
def test_converted_database_answers_as_numbers_and_organisations(
        small: Path, address: str, asn: int | None, organization: str | None) -> None:
    with Geo([small]) as geo:
        (db,) = geo.databases
        assert (db.database_type, db.build_date[:10]) == (ASN_DATABASE_TYPE, "2026-06-17")
        assert db.attribution == IP_LOCATION_DB_ATTRIBUTION
        (p,) = geo.place_all(address)
        assert (p.asn, p.organization, p.iso_code) == (asn, organization, None)
        assert geo.place(address).iso_code is None  # an ASN database places no country


def test_conversion_is_reproducible(small: Path, tmp_path: Path) -> None:
    again = convert(package(tmp_path / "asn.tgz"), tmp_path / "again.mmdb")
    assert again.read_bytes() == small.read_bytes()


@pytest.mark.parametrize(("version", "date"), [
    (ASN_VERSION, "2026-06-17"), ("2.3.2024010100", "2024-01-01")])
def test_the_build_date_comes_from_the_package_version(version: str, date: str) -> None:
    from datetime import UTC, datetime

    assert datetime.fromtimestamp(build_epoch(version), UTC).date().isoformat() == date


@pytest.mark.parametrize("version", ["2.3.0", "latest", "2.3.2026139919"])
def test_a_version_without_a_build_date_is_refused(version: str) -> None:
    with pytest.raises(AnalysisError, match="build date"):
        build_epoch(version)


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_bytes(b"not gzip at all"), "not a readable @ip-location-db/asn package"),
    (lambda p: package(p, {ASN_MEMBERS[0]: V4}), "not an @ip-location-db/asn package"),
    (lambda p: package(p, {ASN_MEMBERS[0]: "1.0.0.0,1.0.0.255,AS1,x\n", ASN_MEMBERS[1]: V6}),
     "asn-ipv4.csv line 1: expected first,last,asn,organisation"),
    (lambda p: package(p, {ASN_MEMBERS[0]: V4 + "1.0.0.0,1.0.0.255\n", ASN_MEMBERS[1]: V6}),
     "asn-ipv4.csv line 4: expected first,last,asn,organisation"),
    (lambda p: package(p, {ASN_MEMBERS[0]: "1.0.0.0,2001::,1,x\n", ASN_MEMBERS[1]: V6}),
     "range 1.0.0.0-2001::: not an address range"),
    (lambda p: package(p, {ASN_MEMBERS[0]: "1.0.0.9,1.0.0.1,1,x\n", ASN_MEMBERS[1]: V6}),
     "range 1.0.0.9-1.0.0.1: not an address range"),
    (lambda p: package(p, {ASN_MEMBERS[0]: V4, ASN_MEMBERS[1]: "\xff-bad,::,1,x\n"}),
     "range \xff-bad-::: not an address range"),
])
def test_damaged_packages_are_refused_and_nothing_is_written(tmp_path: Path, make,
                                                             message: str) -> None:
    src = tmp_path / "x.tgz"
    make(src)
    with pytest.raises(AnalysisError, match=re.escape(message)):
        convert(src, tmp_path / "x.mmdb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.tgz"]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server publishing one package tarball: (its URL, the file)."""
    root = tmp_path / "registry"
    root.mkdir()
    tgz = package(root / "asn-1.0.0.tgz")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/asn-1.0.0.tgz", tgz
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_package_is_downloaded_once_and_checked(registry: tuple[str, Path],
                                                    tmp_path: Path) -> None:
    url, tgz = registry
    cache = tmp_path / "cache"
    got = fetch_source(cache, url=url, integrity=integrity(tgz))
    assert got == cache / "asn-1.0.0.tgz" and got.read_bytes() == tgz.read_bytes()
    tgz.unlink()  # the cached copy is used from now on, no download
    assert fetch_source(cache, url=url, integrity=integrity(got)) == got


@pytest.mark.parametrize("damage", ["wrong pin", "cached copy altered"])
def test_a_download_that_does_not_match_the_pin_is_refused(
        registry: tuple[str, Path], tmp_path: Path, damage: str) -> None:
    url, tgz = registry
    cache = tmp_path / "cache"
    pin = integrity(tgz)
    if damage == "wrong pin":
        pin = integrity(package(tmp_path / "other.tgz", {ASN_MEMBERS[0]: V4}))
    else:  # a damaged cached copy is fetched again, and the served file is damaged too
        cache.mkdir()
        (cache / "asn-1.0.0.tgz").write_bytes(b"damaged")
        tgz.write_bytes(b"damaged too")
    with pytest.raises(AnalysisError, match="does not match the pinned integrity"):
        fetch_source(cache, url=url, integrity=pin)
    assert not any(p.name.endswith(".tmp") for p in cache.iterdir())


def test_an_unreachable_registry_reads_as_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match=r"cannot download the bundled ASN data .*make setup"):
        fetch_source(tmp_path, url="http://127.0.0.1:9/asn-1.0.0.tgz", integrity="sha512-x")


@pytest.mark.parametrize(("address", "asn", "organization"), [
    ("8.8.8.8", 15169, "Google"), ("1.1.1.1", 13335, "Cloudflare"),
    ("110.81.238.33", 4134, "Chinanet"), ("2001:4860:4860::8888", 15169, "Google"),
    ("223.5.5.5", 45102, "Alibaba")])
def test_the_bundled_database_names_real_as_numbers_and_organisations(
        address: str, asn: int, organization: str) -> None:
    path = asn_database()
    assert path.name == f"GeoLite2-ASN-ip-location-db-{ASN_VERSION}.mmdb"
    with Geo([path]) as geo:
        (p,) = geo.place_all(address)
        assert p.asn == asn and organization in (p.organization or ""), p
