"""Analysis layer: captures -> packets -> endpoints -> where (geo) -> the seed table.

The names below load with their module on first use: a scan imports only what it reads
with (numpy and the scanners), not the databases' readers or the table writer.
"""

# ruff: noqa: F401  (the names imported for the type checker only are the package's exports)
from __future__ import annotations

from typing import TYPE_CHECKING

from testbed._lazy import lazy_exports

if TYPE_CHECKING:  # the names, for the type checker (exported through `__all__`)
    from .classify import KINDS, is_special
    from .endpoints import CaptureStats, Endpoint, EndpointReport, by_address, extract_endpoints
    from .geo import Geo, GeoDatabase, MapEntry, Placement, write_mmdb
    from .pcap import Packet, PcapReader, read_packets
    from .table import Row, format_table, seed_table, write_csv

__all__, __getattr__ = lazy_exports(__name__, {
    # (`classify` the function: from `.classify`, as the package's `classify` is that module)
    "classify": ("KINDS", "is_special"),
    "endpoints": ("CaptureStats", "Endpoint", "EndpointReport", "by_address",
                  "extract_endpoints"),
    "geo": ("Geo", "GeoDatabase", "MapEntry", "Placement", "write_mmdb"),
    "pcap": ("Packet", "PcapReader", "read_packets"),
    "table": ("Row", "format_table", "seed_table", "write_csv"),
})
