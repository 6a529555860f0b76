"""Geolocation through geoip2, with provenance.

- `Geo(paths)` opens one reader per database. `place(address)` answers with the first
  database (in the order given) that places the address in a country; `place_all`
  answers once per database. Results are cached per database and network, so a capture
  with many addresses in one block costs one lookup per database.
- `Consensus.of(placements)`: the country the databases agree on, or their disagreement.
- Every geoip2/maxminddb failure is translated to `AnalysisError`.
Writing databases (`write_mmdb`, re-exported here) is in `mmdb`, the databases we ship
and their licences (`bundled_databases`, `attribution_for`) in `bundled`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import geoip2.database
import geoip2.errors
import maxminddb

from testbed._digest import cached_sha256
from testbed._errors import AnalysisError

from .bundled import attribution_for, bundled_databases
from .mmdb import IPNetworkT, MapEntry, write_mmdb

__all__ = [
    "Consensus",
    "Geo",
    "GeoDatabase",
    "MapEntry",
    "Placement",
    "bundled_databases",
    "write_mmdb",
]

class Placement(NamedTuple):
    """Where an address is, per one database.

    From `Geo.place`: `iso_code`/`country_name`/`database` are None when no database
    places it. From `Geo.place_all`: `database` always names the database (label), and
    the other fields are None where it knows nothing. `network` is the CIDR the answer
    holds for (None when unknown); `asn`/`organization` come from ASN databases or the
    traits of City/Enterprise records.
    """

    address: str
    iso_code: str | None
    country_name: str | None
    database: str | None
    network: str | None
    city: str | None = None
    asn: int | None = None
    organization: str | None = None

    @property
    def known(self) -> bool:
        """True when the database told anything about the address."""
        fields = (self.iso_code, self.country_name, self.city, self.asn, self.organization)
        return any(v is not None for v in fields)


@dataclass(frozen=True)
class Consensus:
    """What several databases say about one address's country. Databases that do not
    place the address in a country (unknown address, ASN-only database) are ignored.

    `iso_code`: the code all the others agree on, None when they disagree or none
    knows; `disagree`: at least two different codes; `votes`: (label, code) pairs."""

    iso_code: str | None
    disagree: bool
    votes: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def of(cls, placements: Iterable[Placement]) -> Consensus:
        votes = tuple((p.database or "?", p.iso_code) for p in placements if p.iso_code)
        codes = {code for _, code in votes}
        return cls(next(iter(codes)) if len(codes) == 1 else None, len(codes) > 1, votes)

    @property
    def countries(self) -> list[str]:
        """The distinct ISO codes, sorted."""
        return sorted({code for _, code in self.votes})


@dataclass(frozen=True)
class GeoDatabase:
    """One opened database's provenance. `c_extension`: read through maxminddb's C
    extension (memory-mapped); False means the pure-Python reader (~10x slower)."""

    path: Path
    database_type: str
    build_epoch: int
    build_date: str  # ISO 8601, UTC
    sha256: str
    c_extension: bool = False
    attribution: str | None = None

    @property
    def label(self) -> str:
        """File name and build date, e.g. 'GeoLite2-Country.mmdb (2024-05-01)'."""
        return f"{self.path.name} ({self.build_date[:10]})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "database_type": self.database_type,
            "build_epoch": self.build_epoch,
            "build_date": self.build_date,
            "sha256": self.sha256,
            "reader": "C extension (mmap)" if self.c_extension else "pure Python",
            "c_extension": self.c_extension,
            "attribution": self.attribution,
        }


# database type substring -> geoip2 Reader method, checked in this order
_METHODS = (
    ("Enterprise", "enterprise"),
    ("City", "city"),
    ("Country", "country"),
    ("GeoLite2-ASN", "asn"),
    ("GeoIP2-ISP", "isp"),
)


class _Cache:
    """Per-database answers: by address, and by (version, prefixlen) -> network int."""

    __slots__ = ("by_addr", "by_net")

    def __init__(self) -> None:
        self.by_addr: dict[str, Placement] = {}
        self.by_net: dict[tuple[int, int], dict[int, Placement]] = {}

    def get_net(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Placement | None:
        value = int(ip)
        bits = ip.max_prefixlen
        for (version, plen), nets in self.by_net.items():
            if version != ip.version:
                continue
            hit = nets.get(value >> (bits - plen) << (bits - plen) if plen else 0)
            if hit is not None:
                return hit
        return None

    def put_net(self, net: IPNetworkT, placement: Placement) -> None:
        self.by_net.setdefault((net.version, net.prefixlen), {})[
            int(net.network_address)
        ] = placement


class Geo:
    """Places addresses with one or more MaxMind-format databases.

    `Geo(paths)`; `place(address) -> Placement` (the first database that places the
    address in a country wins; the first database is primary);
    `place_all(address) -> list[Placement]` (one per database, in order);
    `consensus(address) -> Consensus`; `provenance() -> list[dict]`; `close()` or use
    as a context manager. Supported types: Country, City, Enterprise, GeoLite2-ASN
    (including DB-IP's "compat=GeoLite2-ASN"), GeoIP2-ISP. Raises `AnalysisError` for a
    missing or invalid database, an unsupported database type, or an invalid address.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]):
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        self._readers: list[tuple[geoip2.database.Reader, GeoDatabase, str]] = []
        self._caches: list[_Cache] = []
        self._by_addr: dict[str, Placement] = {}
        try:
            for p in paths:
                self._open(Path(p))
        except BaseException:
            self.close()
            raise
        if not self._readers:
            raise AnalysisError("no GeoIP database given")

    def _open(self, path: Path) -> None:
        try:
            reader = geoip2.database.Reader(str(path))
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as e:
            raise AnalysisError(f"cannot open GeoIP database {path}: {e}") from e
        try:
            meta = reader.metadata()
            dbtype = meta.database_type
            method = next((m for key, m in _METHODS if key in dbtype), None)
            if method is None:
                raise AnalysisError(
                    f"GeoIP database {path.name} has type {dbtype!r}; need a Country, City, "
                    "Enterprise, GeoLite2-ASN (or compat=GeoLite2-ASN) or GeoIP2-ISP database"
                )
            epoch = int(meta.build_epoch)
            inner = getattr(reader, "_db_reader", None)
            db = GeoDatabase(
                path=path,
                database_type=dbtype,
                build_epoch=epoch,
                build_date=datetime.fromtimestamp(epoch, UTC).isoformat(),
                sha256=cached_sha256(path),
                c_extension=type(inner).__module__ == "maxminddb.extension",
                attribution=attribution_for(dbtype, epoch),
            )
        except BaseException:
            reader.close()
            raise
        self._readers.append((reader, db, method))
        self._caches.append(_Cache())

    @property
    def databases(self) -> list[GeoDatabase]:
        return [db for _, db, _ in self._readers]

    @property
    def c_extension(self) -> bool:
        """True when every database is read through maxminddb's C extension."""
        return all(db.c_extension for db in self.databases)

    def provenance(self) -> list[dict[str, Any]]:
        """[{file, database_type, build_epoch, build_date, sha256, reader, c_extension,
        attribution}] per database."""
        return [db.to_dict() for db in self.databases]

    @staticmethod
    def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        try:
            return ipaddress.ip_address(address)
        except ValueError as e:
            raise AnalysisError(f"not an IP address: {address!r}") from e

    def _lookup(
        self, i: int, address: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    ) -> Placement:
        cache = self._caches[i]
        hit = cache.by_addr.get(address)
        if hit is not None:
            return hit
        hit = cache.get_net(ip)
        if hit is not None:
            result = hit._replace(address=address)
            cache.by_addr[address] = result
            return result
        reader, db, method = self._readers[i]
        net: IPNetworkT | None
        try:
            model = getattr(reader, method)(address)
        except geoip2.errors.AddressNotFoundError as e:
            net = e.network
            result = Placement(address, None, None, db.label, None)
        except (
            geoip2.errors.GeoIP2Error,
            maxminddb.InvalidDatabaseError,
            TypeError,
            ValueError,
        ) as e:
            raise AnalysisError(f"GeoIP lookup of {address} in {db.label} failed: {e}") from e
        else:
            if method in ("asn", "isp"):
                net = model.network
                result = Placement(
                    address,
                    None,
                    None,
                    db.label,
                    str(net) if net is not None else None,
                    asn=model.autonomous_system_number,
                    organization=model.autonomous_system_organization,
                )
            else:
                net = model.traits.network
                country = model.country
                result = Placement(
                    address,
                    country.iso_code,
                    country.names.get("en") or country.name,
                    db.label,
                    str(net) if net is not None else None,
                    city=model.city.names.get("en") if method != "country" else None,
                    asn=model.traits.autonomous_system_number,
                    organization=model.traits.autonomous_system_organization,
                )
        if net is not None:
            cache.put_net(net, result)
        cache.by_addr[address] = result
        return result

    def place(self, address: str) -> Placement:
        """Country of `address` per the first database that places it in a country;
        all fields but `address` are None when none does."""
        hit = self._by_addr.get(address)
        if hit is not None:
            return hit
        ip = self._ip(address)
        result = Placement(address, None, None, None, None)
        for i in range(len(self._readers)):
            p = self._lookup(i, address, ip)
            if p.iso_code is not None:
                result = p
                break
        self._by_addr[address] = result
        return result

    def place_all(self, address: str) -> list[Placement]:
        """One placement per database, in the order given; each names its database."""
        ip = self._ip(address)
        return [self._lookup(i, address, ip) for i in range(len(self._readers))]

    def consensus(self, address: str) -> Consensus:
        """`Consensus.of(self.place_all(address))`."""
        return Consensus.of(self.place_all(address))

    def close(self) -> None:
        for reader, _, _ in self._readers:
            reader.close()
        self._readers = []
        self._caches = []

    def __enter__(self) -> Geo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
