"""Analysis layer: captures -> packets -> endpoints -> where (geo) -> the seed table.

The names below load with their module on first use: a scan imports only what it reads
with (numpy and the scanners), not the databases' readers or the table writer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .classify import KINDS, is_special
    from .endpoints import CaptureStats, Endpoint, EndpointReport, by_address, extract_endpoints
    from .geo import Geo, GeoDatabase, MapEntry, Placement, write_mmdb
    from .pcap import Packet, PcapReader, read_packets
    from .table import Row, format_table, seed_table, write_csv

#: each public name -> the module that defines it
_HOME = {
    # (`classify` the function: from `.classify`, as the package's `classify` is that module)
    **dict.fromkeys(("KINDS", "is_special"), "classify"),
    **dict.fromkeys(("CaptureStats", "Endpoint", "EndpointReport", "by_address",
                     "extract_endpoints"), "endpoints"),
    **dict.fromkeys(("Geo", "GeoDatabase", "MapEntry", "Placement", "write_mmdb"), "geo"),
    **dict.fromkeys(("Packet", "PcapReader", "read_packets"), "pcap"),
    **dict.fromkeys(("Row", "format_table", "seed_table", "write_csv"), "table"),
}

__all__ = [
    "KINDS",
    "CaptureStats",
    "Endpoint",
    "EndpointReport",
    "Geo",
    "GeoDatabase",
    "MapEntry",
    "Packet",
    "PcapReader",
    "Placement",
    "Row",
    "by_address",
    "extract_endpoints",
    "format_table",
    "is_special",
    "read_packets",
    "seed_table",
    "write_csv",
    "write_mmdb",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)
