"""Where an endpoint is: a :class:`Placement` per address (``analysis/endpoints.json``
``places``), the per-database :class:`PlaceView` it rests on, and the :class:`GeoipDatabase`
provenance recorded in the manifest, the analysis and every verdict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from testbed.run.shapes import (
    Shape,
    flag,
    opt_integer,
    opt_text,
    records,
    text,
    texts,
)


def _asn(d: Mapping[str, Any]) -> int | None:
    """An ASN as a number; older files may hold it as a string of digits."""
    value = d.get("asn")
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return opt_integer(d, "asn")


@dataclass(frozen=True)
class GeoipDatabase:
    """One GeoIP database that placed endpoints: file, type, build and sha256."""

    file: str
    database_type: str | None = None
    build_epoch: int | None = None
    build_date: str | None = None
    sha256: str | None = None
    reader: str | None = None
    c_extension: bool | None = None
    attribution: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "database_type": self.database_type,
                "build_epoch": self.build_epoch, "build_date": self.build_date,
                "sha256": self.sha256, "reader": self.reader, "c_extension": self.c_extension,
                "attribution": self.attribution}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> GeoipDatabase:
        ext = d.get("c_extension")
        if ext is not None and not isinstance(ext, bool):
            raise Shape(f"'c_extension' should be true or false, not {type(ext).__name__}")
        return cls(file=text(d, "file"), database_type=opt_text(d, "database_type"),
                   build_epoch=opt_integer(d, "build_epoch"), build_date=opt_text(d, "build_date"),
                   sha256=opt_text(d, "sha256"), reader=opt_text(d, "reader"), c_extension=ext,
                   attribution=opt_text(d, "attribution"))


@dataclass(frozen=True)
class PlaceView:
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

    def to_json(self) -> dict[str, Any]:
        return {"database": self.database, "via": self.via, "address": self.address,
                "country": self.country, "country_name": self.country_name, "city": self.city,
                "asn": self.asn, "organization": self.organization, "network": self.network}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PlaceView:
        return cls(database=opt_text(d, "database"), via=opt_text(d, "via"),
                   address=opt_text(d, "address"), country=opt_text(d, "country"),
                   country_name=opt_text(d, "country_name"), city=opt_text(d, "city"),
                   asn=_asn(d), organization=opt_text(d, "organization"),
                   network=opt_text(d, "network"))


@dataclass(frozen=True)
class Placement:
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

    def to_json(self) -> dict[str, Any]:
        """The 13 keys ``analysis/endpoints.json`` has always written, in the same order."""
        return {"special": self.special, "stands_for": self.stands_for, "names": list(self.names),
                "country": self.country, "country_name": self.country_name,
                "database": self.database, "network": self.network, "via": self.via,
                "asn": self.asn, "organization": self.organization,
                "views": [v.to_json() for v in self.views], "countries": list(self.countries),
                "disagree": self.disagree}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Placement:
        return cls(special=opt_text(d, "special"), stands_for=opt_text(d, "stands_for"),
                   names=texts(d, "names"), country=opt_text(d, "country"),
                   country_name=opt_text(d, "country_name"), database=opt_text(d, "database"),
                   network=opt_text(d, "network"), via=opt_text(d, "via"), asn=_asn(d),
                   organization=opt_text(d, "organization"),
                   views=records(d, "views", PlaceView.from_json),
                   countries=texts(d, "countries"), disagree=flag(d, "disagree"))


NOWHERE = Placement()  # an address the analysis did not place (or did not see)
