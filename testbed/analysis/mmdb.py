"""Writing MaxMind-format databases (the lab's map; test databases).

`write_mmdb(path, entries)` writes a Country-type database (IPv6 tree, IPv4 mapped at
::/96) that `geoip2.database.Reader(path).country(ip)` reads back; with a City,
Enterprise or GeoLite2-ASN `database_type` it writes the matching record shape.
`write_asn_ranges(path, ranges)` streams inclusive address ranges with their AS into a
GeoLite2-ASN-layout database (the bundled ASN data: half a million rows).
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from testbed._errors import AnalysisError

__all__ = ["AsnRange", "IPNetworkT", "MapEntry", "write_asn_ranges", "write_mmdb"]

IPNetworkT = ipaddress.IPv4Network | ipaddress.IPv6Network


class MapEntry(NamedTuple):
    """One network of a map: CIDR string, ISO 3166 alpha-2 code, English country name;
    optionally a city name, an AS number and its organisation."""

    network: str
    iso_code: str
    country_name: str
    city: str | None = None
    asn: int | None = None
    organization: str | None = None


class AsnRange(NamedTuple):
    """An inclusive range of addresses (first and last, both IPv4 or both IPv6) held by one
    AS: its number and organisation."""

    first: str
    last: str
    asn: int
    organization: str


def _writer(build_epoch: int | None, **options: Any) -> Any:
    """An MMDBWriter with a settable build epoch (reproducible databases). mmdb_writer and
    netaddr load here, with the first database written: an analysis that writes none
    does not pay their ~10 ms import."""
    from mmdb_writer import MMDBWriter

    class _Writer(MMDBWriter):  # type: ignore[misc]
        def _build_meta(self) -> dict[str, Any]:
            meta: dict[str, Any] = super()._build_meta()
            if build_epoch is not None:
                meta["build_epoch"] = build_epoch
            return meta

    return _Writer(**options)


def _record(entry: MapEntry, asn_type: bool) -> dict[str, Any]:
    if asn_type:
        rec: dict[str, Any] = {}
        if entry.asn is not None:
            rec["autonomous_system_number"] = entry.asn
        if entry.organization is not None:
            rec["autonomous_system_organization"] = entry.organization
        return rec
    rec = {"country": {"iso_code": entry.iso_code.upper(), "names": {"en": entry.country_name}}}
    if entry.city is not None:
        rec["city"] = {"names": {"en": entry.city}}
    traits: dict[str, Any] = {}
    if entry.asn is not None:
        traits["autonomous_system_number"] = entry.asn
    if entry.organization is not None:
        traits["autonomous_system_organization"] = entry.organization
    if traits:
        rec["traits"] = traits
    return rec


def write_mmdb(
    path: str | os.PathLike[str],
    entries: Iterable[MapEntry],
    *,
    database_type: str = "Testbed-Lab-Country",
    description: str = "Testbed lab map of simulated internet servers",
    build_epoch: int | None = None,
) -> Path:
    """Write a MaxMind DB mapping each entry's network to its country (and city/AS).

    The database type must contain "Country", "City" or "Enterprise" (geoip2 checks it
    per method), or "GeoLite2-ASN" for an ASN database (flat records: AS number and
    organisation; every entry needs `asn` or `organization`). The file is written atomically.
    `build_epoch` defaults to now (or `SOURCE_DATE_EPOCH`). The same network listed
    twice with different data raises `AnalysisError`.
    """
    asn_type = "GeoLite2-ASN" in database_type
    if not asn_type and not any(k in database_type for k in ("Country", "City", "Enterprise")):
        raise AnalysisError(
            f"database type {database_type!r} must contain 'Country', 'City', 'Enterprise' "
            "or 'GeoLite2-ASN' for geoip2 to read it"
        )
    if build_epoch is None and os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        build_epoch = int(os.environ["SOURCE_DATE_EPOCH"])
    from netaddr import IPSet

    writer = _writer(
        build_epoch,
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description={"en": description},
    )
    seen: dict[IPNetworkT, MapEntry] = {}
    for entry in entries:
        entry = MapEntry(*entry)
        try:
            net = ipaddress.ip_network(entry.network, strict=False)
        except ValueError as e:
            raise AnalysisError(f"map entry {entry.network!r}: not a network") from e
        if asn_type:
            if entry.asn is None and entry.organization is None:
                raise AnalysisError(
                    f"map entry {entry.network}: an ASN database needs an asn or organization")
        elif len(entry.iso_code) != 2 or not entry.iso_code.isalpha():
            raise AnalysisError(f"map entry {entry.network}: bad ISO code {entry.iso_code!r}")
        old = seen.get(net)
        if old is not None:
            if old._replace(network="") != entry._replace(network=""):
                what = (
                    f"AS{old.asn} and AS{entry.asn}"
                    if asn_type
                    else f"{old.iso_code} and {entry.iso_code}"
                )
                raise AnalysisError(f"map lists {net} twice: {what}")
            continue
        seen[net] = entry
    # Insert wider networks first so more specific ones override them.
    for net, entry in sorted(seen.items(), key=lambda kv: (kv[0].version, kv[0].prefixlen)):
        writer.insert_network(IPSet([str(net)]), _record(entry, asn_type))
    return _save(writer, Path(path))


def write_asn_ranges(
    path: str | os.PathLike[str],
    ranges: Iterable[AsnRange],
    *,
    database_type: str,
    description: str,
    build_epoch: int,
) -> Path:
    """Write a GeoLite2-ASN-layout database (records ``autonomous_system_number``,
    ``autonomous_system_organization``) of `ranges`, consumed one at a time (only the
    database's tree is held in memory). Ranges must not overlap (a later one would override
    the earlier where they do). Raises `AnalysisError` naming the bad range; the file is
    written atomically, or not at all."""
    if "GeoLite2-ASN" not in database_type:
        raise AnalysisError(f"database type {database_type!r} must contain 'GeoLite2-ASN'")
    from netaddr import AddrFormatError, IPRange, IPSet

    writer = _writer(build_epoch, ip_version=6, ipv4_compatible=True,
                     database_type=database_type, languages=["en"],
                     description={"en": description})
    records: dict[tuple[int, str], dict[str, Any]] = {}  # one record object per AS and name
    for r in ranges:
        try:
            span = IPSet(IPRange(r.first, r.last))
        except (AddrFormatError, ValueError, TypeError) as e:
            raise AnalysisError(f"range {r.first}-{r.last}: not an address range ({e})") from e
        key = (r.asn, r.organization)
        rec = records.get(key)
        if rec is None:
            rec = records[key] = {"autonomous_system_number": r.asn,
                                  "autonomous_system_organization": r.organization}
        writer.insert_network(span, rec)
    return _save(writer, Path(path))


def _save(writer: Any, path: Path) -> Path:
    """Write `writer`'s database to `path` atomically (a temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer.to_db_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
