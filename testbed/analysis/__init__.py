"""Analysis layer: captures -> packets -> endpoints -> where (geo) -> the seed table."""

from .classify import KINDS, classify, is_special
from .endpoints import CaptureStats, Endpoint, EndpointReport, by_address, extract_endpoints
from .geo import Geo, GeoDatabase, MapEntry, Placement, write_mmdb
from .pcap import Packet, PcapReader, read_packets
from .table import Row, format_table, seed_table, write_csv

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
    "classify",
    "extract_endpoints",
    "format_table",
    "is_special",
    "read_packets",
    "seed_table",
    "write_csv",
    "write_mmdb",
]
