"""Geolocation through geoip2, with provenance; and writing MaxMind-format databases.

- `write_mmdb(path, entries)` writes a Country-type database (IPv6 tree, IPv4 mapped
  at ::/96) that `geoip2.database.Reader(path).country(ip)` reads back.
- `Geo(paths)` opens one reader per database and places addresses: the first database
  (in the order given) that knows an address wins. Results are cached per network, so
  a capture with many addresses in one block costs one lookup.
- Every geoip2/maxminddb failure is translated to `AnalysisError`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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

__all__ = ["Geo", "GeoDatabase", "MapEntry", "Placement", "write_mmdb"]

IPNetworkT = ipaddress.IPv4Network | ipaddress.IPv6Network


class MapEntry(NamedTuple):
    """One network of a map: CIDR string, ISO 3166 alpha-2 code, English country name."""

    network: str
    iso_code: str
    country_name: str


class Placement(NamedTuple):
    """Where an address is. `iso_code`/`country_name`/`database` are None when no
    database knows it; `network` is the CIDR the answer holds for (None if unknown)."""

    address: str
    iso_code: str | None
    country_name: str | None
    database: str | None
    network: str | None


class _Writer(MMDBWriter):
    """MMDBWriter with a settable build epoch (reproducible databases)."""

    build_epoch: int | None = None

    def _build_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = super()._build_meta()
        if self.build_epoch is not None:
            meta["build_epoch"] = self.build_epoch
        return meta


def write_mmdb(
    path: str | os.PathLike[str],
    entries: Iterable[MapEntry],
    *,
    database_type: str = "Testbed-Lab-Country",
    description: str = "Testbed lab map of simulated internet servers",
    build_epoch: int | None = None,
) -> Path:
    """Write a MaxMind DB mapping each entry's network to its country.

    The database type must contain "Country" (geoip2's `country()` checks it). The file
    is written atomically. `build_epoch` defaults to now (or `SOURCE_DATE_EPOCH`).
    The same network listed twice with different countries raises `AnalysisError`.
    """
    if "Country" not in database_type:
        raise AnalysisError(
            f"database type {database_type!r} must contain 'Country' for geoip2 country()"
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
        if len(entry.iso_code) != 2 or not entry.iso_code.isalpha():
            raise AnalysisError(f"map entry {entry.network}: bad ISO code {entry.iso_code!r}")
        old = seen.get(net)
        if old is not None:
            if (old.iso_code, old.country_name) != (entry.iso_code, entry.country_name):
                raise AnalysisError(f"map lists {net} twice: {old.iso_code} and {entry.iso_code}")
            continue
        seen[net] = entry
    # Insert wider networks first so more specific ones override them.
    for net, entry in sorted(seen.items(), key=lambda kv: (kv[0].version, kv[0].prefixlen)):
        record = {
            "country": {
                "iso_code": entry.iso_code.upper(),
                "names": {"en": entry.country_name},
            }
        }
        writer.insert_network(IPSet([str(net)]), record)
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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class GeoDatabase:
    """One opened database's provenance."""

    path: Path
    database_type: str
    build_epoch: int
    build_date: str  # ISO 8601, UTC
    sha256: str

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
        }


class Geo:
    """Places addresses with one or more MaxMind databases (first match wins).

    `Geo(paths)`; `place(address) -> Placement`; `provenance() -> list[dict]`;
    `close()` or use as a context manager. Raises `AnalysisError` for a missing or
    invalid database, an unsupported database type, or an invalid address.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]):
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        self._readers: list[tuple[geoip2.database.Reader, GeoDatabase, str]] = []
        self._by_addr: dict[str, Placement] = {}
        # (version, prefixlen) -> {network int: placement}
        self._by_net: dict[tuple[int, int], dict[int, Placement]] = {}
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
            if "Enterprise" in dbtype:
                method = "enterprise"
            elif "City" in dbtype:
                method = "city"
            elif "Country" in dbtype:
                method = "country"
            else:
                raise AnalysisError(
                    f"GeoIP database {path.name} has type {dbtype!r}; "
                    "need a Country, City or Enterprise database"
                )
            epoch = int(meta.build_epoch)
            db = GeoDatabase(
                path=path,
                database_type=dbtype,
                build_epoch=epoch,
                build_date=datetime.fromtimestamp(epoch, UTC).isoformat(),
                sha256=_sha256(path),
            )
        except BaseException:
            reader.close()
            raise
        self._readers.append((reader, db, method))

    @property
    def databases(self) -> list[GeoDatabase]:
        return [db for _, db, _ in self._readers]

    def provenance(self) -> list[dict[str, Any]]:
        """[{file, database_type, build_epoch, build_date, sha256}] per database."""
        return [db.to_dict() for db in self.databases]

    def _cached(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Placement | None:
        value = int(ip)
        bits = ip.max_prefixlen
        for (version, plen), nets in self._by_net.items():
            if version != ip.version:
                continue
            hit = nets.get(value >> (bits - plen) << (bits - plen) if plen else 0)
            if hit is not None:
                return hit
        return None

    def place(self, address: str) -> Placement:
        """Country of `address` per the first database that knows it."""
        hit = self._by_addr.get(address)
        if hit is not None:
            return hit
        try:
            ip = ipaddress.ip_address(address)
        except ValueError as e:
            raise AnalysisError(f"not an IP address: {address!r}") from e
        cached = self._cached(ip)
        if cached is not None:
            result = cached._replace(address=address)
            self._by_addr[address] = result
            return result
        # The answer holds for the intersection of every network consulted, i.e. the
        # most specific one (networks containing the same address are nested).
        net: IPNetworkT | None = None
        result = Placement(address, None, None, None, None)
        for reader, db, method in self._readers:
            try:
                model = getattr(reader, method)(address)
            except geoip2.errors.AddressNotFoundError as e:
                found = e.network
                if found is not None and (net is None or found.prefixlen > net.prefixlen):
                    net = found
                continue
            except (
                geoip2.errors.GeoIP2Error,
                maxminddb.InvalidDatabaseError,
                TypeError,
                ValueError,
            ) as e:
                raise AnalysisError(f"GeoIP lookup of {address} in {db.label} failed: {e}") from e
            matched = model.traits.network
            if matched is not None and (net is None or matched.prefixlen > net.prefixlen):
                net = matched
            country = model.country
            result = Placement(
                address,
                country.iso_code,
                country.names.get("en") or country.name,
                db.label,
                str(matched) if matched is not None else None,
            )
            break
        if net is not None:
            key = int(net.network_address)
            self._by_net.setdefault((net.version, net.prefixlen), {})[key] = result
        self._by_addr[address] = result
        return result

    def close(self) -> None:
        for reader, _, _ in self._readers:
            reader.close()
        self._readers = []

    def __enter__(self) -> Geo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
