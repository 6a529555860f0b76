"""Endpoints: who (which variant's guest) talked to which remote (address, proto, port).

`extract_endpoints(pcap, guests, infrastructure)` streams the capture once and
aggregates per (variant, remote address, proto, remote port). A packet is attributed
when one side is a guest; the other side is the remote. Traffic between a guest and an
infrastructure address (the lab gateway's DNS, ...) is aggregated the same way into
`report.infrastructure`, never into `report.endpoints`. A packet between two guests is
counted once as attributed and appears under both variants. Every other packet is
unattributed. Invariant: packets_read == attributed + infrastructure + unattributed.

Fast path: the reader's `flow_batches()` hands over numpy columns for the common
frames (see `testbed.analysis.pcap`); `_Columns` attributes them vectorised (guest and
infrastructure look-ups by binary search over the packed addresses), keys each packet by
(variant, direction, proto, remote port, remote address) packed into uint64 columns, and
reduces rows with a sort and `reduceat` (packets and bytes summed, first/last seen as
min/max), re-reducing whenever the pending rows outgrow the reduced ones, so memory grows
with the number of endpoints, never with the capture. The few frames the columns cannot
express arrive as per-flow counters and take the original per-flow loop; both halves
are merged into the same per-endpoint records. `_extract(..., fast=False)` is the
reference path (`PcapReader.flows()` and the per-flow loop only); tests compare the two.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from testbed._errors import AnalysisError
from testbed.run.endpoints import EndpointRow

from . import native
from .addrindex import AddrIndex
from .pcap import Flows, IPColumns, PcapReader, proto_name

__all__ = [
    "CaptureStats",
    "Endpoint",
    "EndpointCounter",
    "EndpointReport",
    "by_address",
    "extract_endpoints",
]


# One remote a variant's guest talked to: the run's record (`analysis/endpoints.json`).
Endpoint = EndpointRow


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


Agg = dict[tuple[str, bytes, int, int], list[Any]]


def _finish(agg: Agg) -> list[Endpoint]:
    # Sorted as by `_sort_key`: IPv4 (4 bytes) before IPv6, packed big-endian bytes
    # compare like the integers, without building ipaddress objects.
    names: dict[bytes, str] = {}
    items = sorted(
        agg.items(),
        key=lambda kv: (kv[0][0], len(kv[0][1]), kv[0][1], proto_name(kv[0][2]), kv[0][3]),
    )
    out = []
    for (variant, remote, proto, port), (po, pi, bo, bi, first, last) in items:
        name = names.get(remote)
        if name is None:
            fam = socket.AF_INET if len(remote) == 4 else socket.AF_INET6
            name = names[remote] = socket.inet_ntop(fam, remote)
        out.append(Endpoint(variant, name, proto_name(proto), port, po, pi, bo, bi, first, last))
    return out


def _add(
    agg: Agg,
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


U64 = NDArray[np.uint64]
I64 = NDArray[np.int64]
# Rows waiting for a reduction: key columns, [packets, bytes] (n, 2), first, last.
_Rows = tuple[list[U64], I64, NDArray[np.float64], NDArray[np.float64]]
_REDUCE_AT = 1 << 18  # pending rows that trigger a reduction (bounds memory)


def _hash_reduce(keys: list[U64], vals: I64, first: NDArray[np.float64],
                 last: NDArray[np.float64]) -> _Rows:
    """`_Columns._reduce`'s sort and `reduceat` (its reference) as one hash pass in C; the
    groups come in order of first appearance, which no reader depends on."""
    assert native.native_group_reduce is not None
    m = len(vals)
    table = np.ascontiguousarray(np.column_stack(keys) if len(keys) > 1 else keys[0],
                                 dtype=np.uint64)
    heads = np.empty(m, dtype=np.int64)
    sums = np.empty((m, 2), dtype=np.int64)
    lo, hi = np.empty(m), np.empty(m)
    g = native.native_group_reduce(table, len(keys), np.ascontiguousarray(vals, np.int64),
                                   np.ascontiguousarray(first, np.float64),
                                   np.ascontiguousarray(last, np.float64), heads, sums, lo, hi)
    rows = heads[:g]
    return [k[rows] for k in keys], sums[:g].copy(), lo[:g].copy(), hi[:g].copy()


class _Columns:
    """Vectorised attribution and aggregation of `IPColumns` batches."""

    def __init__(self, guest_of: Mapping[bytes, str], infra: Collection[bytes]) -> None:
        self.variants = sorted(set(guest_of.values()))
        number = {v: i for i, v in enumerate(self.variants)}
        self.guests = AddrIndex({a: number[v] for a, v in guest_of.items()})
        self.infra = AddrIndex(dict.fromkeys(infra, 0))
        # IPv4 keys fit one uint64 with up to 128 variants: variant(7) dir(1) proto(8)
        # port(16) address(32); otherwise (and for IPv6) a meta column leads.
        self.fused4 = len(self.variants) <= 128
        self.pending: dict[int, list[_Rows]] = {4: [], 6: []}
        self.npending = {4: 0, 6: 0}
        self.reduced: dict[int, _Rows | None] = {4: None, 6: None}
        self.attributed = self.infrastructure = self.unattributed = 0

    def add(self, c: IPColumns, gs: I64 | None = None) -> None:
        """`gs`: the sources' variant numbers, when the caller has them already."""
        if gs is None:
            gs = self.guests.find(c.version, c.src)
        gd = self.guests.find(c.version, c.dst)
        if native.native_endpoint_rows is not None:
            self._add_native(c, gs, gd)
            return
        out = gs >= 0
        inb = gd >= 0
        either = out | inb
        n_either = int(np.count_nonzero(either))
        self.unattributed += len(gs) - n_either
        if not n_either:
            return
        is_infra = np.zeros(len(gs), dtype=bool)
        ro, ri = np.flatnonzero(out), np.flatnonzero(inb)
        is_infra[ro] = self.infra.find(c.version, c.dst[ro]) >= 0
        is_infra[ri] |= self.infra.find(c.version, c.src[ri]) >= 0
        n_infra = int(np.count_nonzero(is_infra))
        self.infrastructure += n_infra
        self.attributed += n_either - n_infra
        variant = np.concatenate((gs[ro], gd[ri]))
        remote = np.concatenate((c.dst[ro], c.src[ri]))
        port = np.concatenate((c.dport[ro], c.sport[ri]))
        proto = np.concatenate((c.proto[ro], c.proto[ri]))
        direction = np.zeros(len(variant), dtype=np.int64)
        direction[len(ro) :] = 1
        ts = np.concatenate((c.ts[ro], c.ts[ri]))
        vals = np.empty((len(variant), 2), dtype=np.int64)
        vals[:, 0] = 1
        vals[: len(ro), 1] = c.length[ro]
        vals[len(ro) :, 1] = c.length[ri]
        meta = (((variant << 1 | direction) << 8 | proto) << 16 | port).astype(np.uint64)
        if c.version == 4 and self.fused4:
            keys = [meta << np.uint64(32) | remote]
        elif c.version == 4:
            keys = [meta, remote]
        else:
            keys = [meta, remote[:, 0], remote[:, 1]]
        self._push(c.version, (keys, vals, ts, ts))

    def _add_native(self, c: IPColumns, gs: I64, gd: I64) -> None:
        """`add`'s rows made and reduced per batch in C (`native.native_endpoint_rows`;
        the numpy half of `add` is its reference)."""
        assert native.native_endpoint_rows is not None
        n = len(gs)
        aw = 1 if c.version == 4 else 2
        kw = 1 if c.version == 4 and self.fused4 else (2 if c.version == 4 else 3)
        isrc = (self.infra.find(c.version, c.src) >= 0).view(np.uint8)
        idst = (self.infra.find(c.version, c.dst) >= 0).view(np.uint8)
        keys = np.empty((2 * n, kw), dtype=np.uint64)
        vals = np.empty((2 * n, 2), dtype=np.int64)
        first, last = np.empty(2 * n), np.empty(2 * n)
        g, attributed, infra, unattributed = native.native_endpoint_rows(
            aw, *(np.ascontiguousarray(a, dtype=np.uint64) for a in (c.src, c.dst)),
            *(np.ascontiguousarray(a, dtype=np.int64) for a in (c.proto, c.sport, c.dport)),
            np.ascontiguousarray(c.ts, dtype=np.float64),
            *(np.ascontiguousarray(a, dtype=np.int64) for a in (c.length, gs, gd)),
            isrc, idst, c.version == 4 and self.fused4, keys, vals, first, last)
        self.attributed += attributed
        self.infrastructure += infra
        self.unattributed += unattributed
        if g:  # copies: views would keep each batch's whole buffers alive until a reduction
            self._push(c.version, ([keys[:g, j].copy() for j in range(kw)], vals[:g].copy(),
                                   first[:g].copy(), last[:g].copy()))

    def _push(self, version: int, rows: _Rows) -> None:
        self.pending[version].append(rows)
        self.npending[version] += len(rows[1])
        done = self.reduced[version]
        if self.npending[version] >= max(_REDUCE_AT, 2 * (0 if done is None else len(done[1]))):
            self._reduce(version)

    def _reduce(self, version: int) -> None:
        parts = self.pending[version]
        done = self.reduced[version]
        if done is not None:
            parts = [done, *parts]
        if not parts:
            return
        self.pending[version] = []
        self.npending[version] = 0
        keys = [np.concatenate([p[0][j] for p in parts]) for j in range(len(parts[0][0]))]
        vals = np.concatenate([p[1] for p in parts])
        first = np.concatenate([p[2] for p in parts])
        last = np.concatenate([p[3] for p in parts])
        if native.native_group_reduce is not None:
            self.reduced[version] = _hash_reduce(keys, vals, first, last)
            return
        order = np.argsort(keys[0]) if len(keys) == 1 else np.lexsort(keys[::-1])
        keys = [k[order] for k in keys]
        change = np.zeros(len(order), dtype=bool)
        change[0] = True
        for k in keys:
            change[1:] |= k[1:] != k[:-1]
        starts = np.flatnonzero(change)
        self.reduced[version] = (
            [k[starts] for k in keys],
            np.add.reduceat(vals[order], starts, axis=0),
            np.minimum.reduceat(first[order], starts),
            np.maximum.reduceat(last[order], starts),
        )

    def result(self, infra: Collection[bytes]) -> tuple[Agg, Agg]:
        """(endpoints, infrastructure) records: {(variant, remote, proto, port):
        [packets_out, packets_in, bytes_out, bytes_in, first, last]}."""
        agg: Agg = {}
        infra_agg: Agg = {}
        for version in (4, 6):
            self._reduce(version)
            done = self.reduced[version]
            if done is None:
                continue
            keys, vals, first, last = done
            if version == 4 and self.fused4:
                meta_col = keys[0] >> np.uint64(32)
                addrs = (keys[0] & np.uint64(0xFFFFFFFF)).tolist()
            elif version == 4:
                meta_col, addrs = keys[0], keys[1].tolist()
            else:
                meta_col = keys[0]
                addrs = [
                    (h << 64) | lo for h, lo in zip(keys[1].tolist(), keys[2].tolist(), strict=True)
                ]
            size = 4 if version == 4 else 16
            variants = self.variants
            rows = zip(
                meta_col.tolist(), addrs, vals.tolist(), first.tolist(), last.tolist(), strict=True
            )
            for meta, addr, (count, nbytes), t0, t1 in rows:
                remote = addr.to_bytes(size, "big")
                key = (variants[meta >> 25], remote, (meta >> 16) & 0xFF, meta & 0xFFFF)
                target = infra_agg if remote in infra else agg
                rec = target.get(key)
                if rec is None:
                    rec = target[key] = [0, 0, 0, 0, t0, t1]
                else:
                    rec[4] = min(rec[4], t0)
                    rec[5] = max(rec[5], t1)
                inbound = (meta >> 24) & 1
                rec[inbound] += count
                rec[2 + inbound] += nbytes
        return agg, infra_agg


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
    return _extract(pcap_path, guests, infrastructure, fast=True)


def _extract(
    pcap_path: str | os.PathLike[str],
    guests: Mapping[str, str],
    infrastructure: Collection[str],
    *,
    fast: bool,
) -> EndpointReport:
    """`extract_endpoints`; `fast=False` is the scalar reference path."""
    counter = EndpointCounter(guests, infrastructure)
    reader = PcapReader(pcap_path)
    if fast:
        flows: Flows = {}
        for batch in reader.flow_batches(flows):
            counter.add(batch)
    else:
        flows = reader.flows()
    return counter.report(str(pcap_path), reader, flows, columns=fast)


class EndpointCounter:
    """The endpoint consumer of a pass: `add(columns)` per batch of the vectorised path,
    then `report(...)` with the reader (its counters) and the per-flow dict of the
    packets the columns did not cover."""

    def __init__(self, guests: Mapping[str, str], infrastructure: Collection[str]) -> None:
        self.guest_of = {_packed(a): v for a, v in guests.items()}
        self.infra = {_packed(a) for a in infrastructure}
        self.columns = _Columns(self.guest_of, self.infra)
        self.add = self.columns.add

    def report(self, capture: str, reader: PcapReader, flows: Flows, *,
               columns: bool = True) -> EndpointReport:
        guest_of, infra = self.guest_of, self.infra
        if columns:
            agg, infra_agg = self.columns.result(infra)
            attributed = self.columns.attributed
            infra_count = self.columns.infrastructure
            unattributed = self.columns.unattributed
        else:
            agg, infra_agg = {}, {}
            attributed = infra_count = unattributed = 0
        get_guest = guest_of.get

        for (src, dst, proto, sport, dport), (count, nbytes, first, last) in flows.items():
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
        return EndpointReport(capture, _finish(agg), _finish(infra_agg), stats)


def by_address(report: EndpointReport) -> dict[str, dict[str, list[Endpoint]]]:
    """{remote address: {variant: [endpoints]}} over `report.endpoints`."""
    out: dict[str, dict[str, list[Endpoint]]] = {}
    for e in report.endpoints:
        out.setdefault(e.address, {}).setdefault(e.variant, []).append(e)
    return out
