"""Where an endpoint is: a :class:`Placement` per address (``analysis/endpoints.json``
``places``), the per-database :class:`PlaceView` it rests on, and the :class:`GeoipDatabase`
provenance recorded in the manifest, the analysis and every verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from testbed.run.shapes import Record, optional


def _asn(d: Mapping[str, Any]) -> int | None:
    """An ASN as a number; older files may hold it as a string of digits."""
    value = d.get("asn")
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return optional(d, "asn", int)


@dataclass(frozen=True)
class GeoipDatabase(Record):
    """One GeoIP database that placed endpoints: file, type, build and sha256."""

    file: str
    database_type: str | None = None
    build_epoch: int | None = None
    build_date: str | None = None
    sha256: str | None = None
    reader: str | None = None
    c_extension: bool | None = None
    attribution: str | None = None


@dataclass(frozen=True)
class PlaceView(Record):
    """What one database says about the address (``via="address"``) or about the real address
    it stands for (``via="stands_for"``)."""

    database: str | None
    via: str | None = None
    address: str | None = None
    country: str | None = None
    country_name: str | None = None
    city: str | None = None
    asn: int | None = None
    organization: str | None = None
    network: str | None = None

    @classmethod
    def read_otherwise(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"asn": _asn(d)}


@dataclass(frozen=True)
class Placement(Record):
    """Where one endpoint is, with provenance. ``special`` (multicast, private, ...) is set
    for special-purpose addresses, which are classified, never placed; otherwise the primary
    placement (``country`` ... ``via``) is the first database's that knows the address or its
    stand-in, and ``views`` holds every database's answer."""

    special: str | None = None
    stands_for: str | None = None
    names: tuple[str, ...] = ()
    country: str | None = None
    country_name: str | None = None
    database: str | None = None
    network: str | None = None
    via: str | None = None
    asn: int | None = None
    organization: str | None = None
    views: tuple[PlaceView, ...] = ()
    countries: tuple[str, ...] = ()
    disagree: bool = False

    @property
    def placed(self) -> bool:
        return bool(self.country) and not self.special

    @classmethod
    def read_otherwise(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"asn": _asn(d)}


NOWHERE = Placement()  # an address the analysis did not place (or did not see)
