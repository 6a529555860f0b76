"""Endpoints: who (which variant's guest) talked to which remote (address, proto, port).

`extract_endpoints(pcap, guests, infrastructure)` streams the capture once and
aggregates per (variant, remote address, proto, remote port). A packet is attributed
when one side is a guest; the other side is the remote. Traffic between a guest and an
infrastructure address (the lab gateway's DNS, ...) is aggregated the same way into
`report.infrastructure`, never into `report.endpoints`. A packet between two guests is
counted once as attributed and appears under both variants. Every other packet is
unattributed. Invariant: packets_read == attributed + infrastructure + unattributed.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from testbed._errors import AnalysisError

from .pcap import PcapReader, proto_name

__all__ = ["CaptureStats", "Endpoint", "EndpointReport", "by_address", "extract_endpoints"]


@dataclass(slots=True)
class Endpoint:
    """Traffic between one variant's guest and one remote (address, proto, port).
    `port` is the remote port (0 for ICMP and other portless protocols); out = from the
    guest, in = to the guest; bytes are original wire lengths; times are capture
    timestamps in seconds since the epoch."""

    variant: str
    address: str
    proto: str
    port: int
    packets_out: int
    packets_in: int
    bytes_out: int
    bytes_in: int
    first_seen: float
    last_seen: float

    @property
    def packets(self) -> int:
        return self.packets_out + self.packets_in

    @property
    def bytes(self) -> int:
        return self.bytes_out + self.bytes_in


@dataclass(slots=True)
class CaptureStats:
    """Counters of one pass over a capture."""

    frames_read: int = 0  # capture records, IP or not
    packets_read: int = 0  # IPv4/IPv6 packets
    packets_attributed: int = 0
    packets_infrastructure: int = 0
    packets_unattributed: int = 0
    frames_skipped: int = 0  # non-IP frames (ARP, ...)
    warnings: list[str] = field(default_factory=list)


@dataclass
class EndpointReport:
    """The result of `extract_endpoints`; `to_json()` / `from_json()` round-trip."""

    capture: str
    endpoints: list[Endpoint]
    infrastructure: list[Endpoint]
    stats: CaptureStats

    def to_json(self) -> dict[str, Any]:
        return {
            "capture": self.capture,
            "endpoints": [asdict(e) for e in self.endpoints],
            "infrastructure": [asdict(e) for e in self.infrastructure],
            "stats": asdict(self.stats),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EndpointReport:
        try:
            return cls(
                capture=str(data["capture"]),
                endpoints=[Endpoint(**e) for e in data["endpoints"]],
                infrastructure=[Endpoint(**e) for e in data["infrastructure"]],
                stats=CaptureStats(**data["stats"]),
            )
        except (KeyError, TypeError) as e:
            raise AnalysisError(f"endpoint report is malformed: {e!r}") from e

    @property
    def variants(self) -> list[str]:
        return sorted({e.variant for e in self.endpoints})


def _packed(address: str) -> bytes:
    try:
        return ipaddress.ip_address(address).packed
    except ValueError as e:
        raise AnalysisError(f"not an IP address: {address!r}") from e


def _sort_key(e: Endpoint) -> tuple[str, int, int, str, int]:
    ip = ipaddress.ip_address(e.address)
    return (e.variant, ip.version, int(ip), e.proto, e.port)


def _finish(agg: dict[tuple[str, bytes, int, int], list[Any]]) -> list[Endpoint]:
    names: dict[bytes, str] = {}
    out = []
    for (variant, remote, proto, port), (po, pi, bo, bi, first, last) in agg.items():
        name = names.get(remote)
        if name is None:
            fam = socket.AF_INET if len(remote) == 4 else socket.AF_INET6
            name = names[remote] = socket.inet_ntop(fam, remote)
        out.append(Endpoint(variant, name, proto_name(proto), port, po, pi, bo, bi, first, last))
    out.sort(key=_sort_key)
    return out


def _add(
    agg: dict[tuple[str, bytes, int, int], list[Any]],
    key: tuple[str, bytes, int, int],
    po: int,
    pi: int,
    bo: int,
    bi: int,
    first: float,
    last: float,
) -> None:
    rec = agg.get(key)
    if rec is None:
        agg[key] = [po, pi, bo, bi, first, last]
    else:
        rec[0] += po
        rec[1] += pi
        rec[2] += bo
        rec[3] += bi
        rec[4] = min(rec[4], first)
        rec[5] = max(rec[5], last)


def extract_endpoints(
    pcap_path: str | os.PathLike[str],
    guests: Mapping[str, str],
    infrastructure: Collection[str] = (),
) -> EndpointReport:
    """Aggregate a capture's traffic per (variant, remote address, proto, remote port).

    `guests` maps guest address -> variant name; `infrastructure` lists lab service
    addresses whose traffic with guests is reported apart. Raises `CaptureFormatError`
    for a file that is not a capture; damage becomes `stats.warnings`.
    """
    guest_of = {_packed(a): v for a, v in guests.items()}
    infra = {_packed(a) for a in infrastructure}
    agg: dict[tuple[str, bytes, int, int], list[Any]] = {}
    infra_agg: dict[tuple[str, bytes, int, int], list[Any]] = {}
    attributed = infra_count = unattributed = 0
    reader = PcapReader(pcap_path)
    get_guest = guest_of.get

    for (src, dst, proto, sport, dport), (count, nbytes, first, last) in reader.flows().items():
        n = int(count)
        sv = get_guest(src)
        dv = get_guest(dst)
        if sv is None and dv is None:
            unattributed += n
            continue
        is_infra = False
        if sv is not None:  # outbound from a guest
            target = infra_agg if dst in infra else agg
            is_infra = target is infra_agg
            _add(target, (sv, dst, proto, dport), n, 0, int(nbytes), 0, first, last)
        if dv is not None:  # inbound to a guest
            target = infra_agg if src in infra else agg
            is_infra = is_infra or target is infra_agg
            _add(target, (dv, src, proto, sport), 0, n, 0, int(nbytes), first, last)
        if is_infra:
            infra_count += n
        else:
            attributed += n

    stats = CaptureStats(
        frames_read=reader.frames,
        packets_read=reader.packets,
        packets_attributed=attributed,
        packets_infrastructure=infra_count,
        packets_unattributed=unattributed,
        frames_skipped=reader.skipped,
        warnings=list(reader.warnings),
    )
    return EndpointReport(str(pcap_path), _finish(agg), _finish(infra_agg), stats)


def by_address(report: EndpointReport) -> dict[str, dict[str, list[Endpoint]]]:
    """{remote address: {variant: [endpoints]}} over `report.endpoints`."""
    out: dict[str, dict[str, list[Endpoint]]] = {}
    for e in report.endpoints:
        out.setdefault(e.address, {}).setdefault(e.variant, []).append(e)
    return out
