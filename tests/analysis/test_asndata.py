"""The bundled AS-organisation database: geoip2fast's data converted to a GeoLite2-ASN mmdb
(a constructed data file, hostile and foreign files, and the real bundled one)."""

from __future__ import annotations

import gzip
import ipaddress
import os
import pickle
import re
from pathlib import Path

import pytest

from testbed._errors import AnalysisError
from testbed.analysis.asndata import asn_database, convert
from testbed.analysis.geo import Geo

INFO = "MAXMIND:GeoLite2-CountryASN-IPv4IPv6-en-20240618"
NETS = [("1.1.1.0/24", "CLOUDFLARENET"), ("8.8.8.0/24", "GOOGLE"),
        ("9.9.9.0/24", "<unknown>"), ("10.0.0.0/8", "IANA.ORG"),
        ("2001:4860::/32", "GOOGLE"), ("2400:cb00::/32", "CLOUDFLARENET")]


def data_file(path: Path, nets: list[tuple[str, str]] = NETS, info: object = None,
              version: int = 120) -> Path:
    """A geoip2fast Country+ASN data file holding `nets` (its country part empty)."""
    names = ["<unknown>", *sorted({n for _, n in nets} - {"<unknown>"})]
    rows = sorted((int(ipaddress.ip_network(c).network_address),
                   names.index(n), ipaddress.ip_network(c).prefixlen) for c, n in nets)
    first, ids, lens = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    data = ([0], [first[0]], [], names, [[]], [first], [[]], [ids], [[]], [lens])
    meta = info if info is not None else {"info": INFO, "country": True, "city": False,
                                          "asn": True, "ipv6": True}
    with gzip.open(path, "wb") as fh:
        pickle.dump((version, meta, len(rows), data), fh)
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("asn")
    return convert(data_file(folder / "asn.dat.gz"), folder / "asn.mmdb")


@pytest.mark.parametrize(("address", "organization"), [
    ("1.1.1.1", "CLOUDFLARENET"), ("8.8.8.8", "GOOGLE"), ("8.8.4.4", None),
    ("9.9.9.9", None), ("10.1.2.3", None), ("2001:4860:4860::8888", "GOOGLE"),
    ("2400:cb00:2048:1::c629:d7a2", "CLOUDFLARENET"), ("2a00:1450::1", None)])
def test_converted_database_answers_organisations(small: Path, address: str,
                                                  organization: str | None) -> None:
    with Geo([small]) as geo:
        (db,) = geo.databases
        assert (db.database_type, db.build_date[:10]) == ("GeoLite2-ASN", "2024-06-18")
        assert "GeoLite2 data created by MaxMind" in (db.attribution or "")
        (p,) = geo.place_all(address)
        assert (p.organization, p.asn, p.iso_code) == (organization, None, None)
        assert geo.place(address).iso_code is None  # an ASN database places no country


def test_conversion_is_reproducible(small: Path, tmp_path: Path) -> None:
    again = convert(data_file(tmp_path / "asn.dat.gz"), tmp_path / "again.mmdb")
    assert again.read_bytes() == small.read_bytes()


class Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/testbed-asn-pwned",))


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_bytes(gzip.compress(pickle.dumps(Boom()))), "refusing posix.system"),
    (lambda p: p.write_bytes(b"not gzip at all"), "not a geoip2fast data file"),
    (lambda p: data_file(p, info={"info": INFO, "country": True, "asn": False}),
     "not a geoip2fast Country+ASN data file"),
    (lambda p: data_file(p, version=110), "not a geoip2fast Country+ASN data file"),
    (lambda p: data_file(p, info={"info": "no date", "country": True, "asn": True}),
     "names no build date"),
])
def test_foreign_or_hostile_files_are_refused(tmp_path: Path, make, message: str) -> None:
    src = tmp_path / "x.dat.gz"
    make(src)
    with pytest.raises(AnalysisError, match=re.escape(message)):
        convert(src, tmp_path / "x.mmdb")
    assert not (tmp_path / "x.mmdb").exists()
    assert not Path("/tmp/testbed-asn-pwned").exists()


@pytest.mark.parametrize(("address", "organization"), [
    ("8.8.8.8", "GOOGLE"), ("1.1.1.1", "CLOUDFLARENET"), ("110.81.238.33", "Chinanet"),
    ("2001:4860:4860::8888", "GOOGLE"), ("223.5.5.5", "Alibaba")])
def test_the_bundled_database_names_real_organisations(address: str, organization: str) -> None:
    path = asn_database()
    assert path is not None, "geoip2fast is not installed (make venv installs it)"
    with Geo([path]) as geo:
        (p,) = geo.place_all(address)
        assert organization in (p.organization or ""), p
