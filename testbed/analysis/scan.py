"""One pass over a capture for every consumer: endpoints, names, canary hits, bursts.

`scan_capture(pcap, guests, infrastructure, canary)` reads the file once through
`PcapReader.scan_batches` and hands each batch to the consumers: `EndpointCounter` takes
the numpy columns (the odd frames arrive in the reader's per-flow dict); the payload
consumers (`consumers`: names, `canaries`, `bursts`) take the columns plus the odd frames,
decoded here by the scalar payload decoder, as `Part`s.

Each consumer gives exactly what its scalar reference gives (`extract_endpoints(...,
fast=False)`, `names.extract_names`, `evidence.canary_in_pcap`, `evidence.bursts`);
tests compare them. A new consumer (QUIC) is one more class with `add(parts)`.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from testbed.run.evidence import ChatEvidence

from .addrindex import AddrIndex
from .bursts import BurstConsumer
from .canaries import CanaryConsumer
from .consumers import NameConsumer, Part, address_value
from .decode import payload_decoder
from .endpoints import EndpointCounter, EndpointReport
from .evidence import BurstKey, named_bursts, plaintext_hits
from .names import NameIndex
from .pcap import Flows, IPColumns, PcapReader, ScanBatch

__all__ = ["CaptureScan", "scan_capture"]

I64 = NDArray[np.int64]


@dataclass(frozen=True)
class CaptureScan:
    """Everything the analysis takes from the capture itself (no GeoIP involved);
    ``stopped``: the warning of the damage that ended the reading early (None: read to the
    end)."""

    endpoints: EndpointReport
    names: NameIndex
    canary_hits: tuple[ChatEvidence, ...]
    bursts: Mapping[BurstKey, tuple[float, ...]]
    stopped: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoints": self.endpoints.to_json(),
            "names": self.names.to_json(),
            "canary_hits": [e.to_json() for e in self.canary_hits],
            # the times as base64 of little-endian float64: exact, and ~20x faster to write
            # and read than JSON numbers (tens of thousands at a million packets)
            "bursts": [[*k, base64.b64encode(np.asarray(v, dtype="<f8").tobytes()).decode()]
                       for k, v in self.bursts.items()],
            "stopped": self.stopped,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaptureScan:
        bursts = {(str(v), str(a), str(p), int(port)): _times(times)
                  for v, a, p, port, times in data["bursts"]}
        stopped = data.get("stopped")
        return cls(EndpointReport.from_json(data["endpoints"]),
                   NameIndex.from_json(data["names"]),
                   tuple(ChatEvidence.from_json(e) for e in data["canary_hits"]), bursts,
                   None if stopped is None else str(stopped))


def _times(data: Any) -> tuple[float, ...]:
    """Burst times as `CaptureScan.to_json` writes them (or a list of numbers)."""
    if isinstance(data, str):
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError as e:
            raise TypeError(f"burst times: {e}") from e
        if len(raw) % 8:
            raise TypeError("burst times: not a whole number of float64 values")
        return tuple(np.frombuffer(raw, dtype="<f8").tolist())
    return tuple(float(t) for t in data)


def _odd_parts(batch: ScanBatch, guests: AddrIndex,
               decoders: dict[int, Any]) -> list[Part]:
    """The batch's odd frames, decoded one by one, as columns over their own buffer."""
    rows: dict[int, list[tuple[Any, ...]]] = {4: [], 6: []}
    for index, linktype, start, end, ts in batch.odd:
        decode = decoders.get(linktype)
        if decode is None:
            decode = decoders[linktype] = payload_decoder(linktype)
        pkt = decode(batch.buf, start, end, ts, 0)
        if pkt is not None and pkt[3]:
            rows[4 if len(pkt[1]) == 4 else 6].append((index, *pkt))
    out = []
    for version, found in rows.items():
        if not found:
            continue
        payloads = [p[7] for p in found]
        ends = np.cumsum([len(p) for p in payloads])
        src = np.array([address_value(p[2]) for p in found], dtype=np.uint64)
        dst = np.array([address_value(p[3]) for p in found], dtype=np.uint64)

        def col(i: int, rows: list[tuple[Any, ...]] = found) -> I64:
            return np.array([p[i] for p in rows], dtype=np.int64)

        cols = IPColumns(version, src, dst, col(4), col(5), col(6),
                         np.array([p[1] for p in found]), np.zeros(len(found), np.int64),
                         col(0), col(8), ends - [len(p) for p in payloads], ends)
        out.append(Part(b"".join(payloads), cols, guests.find(version, src)))
    return out


def scan_capture(
    pcap_path: str | os.PathLike[str],
    guests: Mapping[str, str],
    infrastructure: Collection[str] = (),
    canary: str = "",
) -> CaptureScan:
    """Read the capture once and return what every consumer found. `guests` maps guest
    address -> variant; `canary` is the run's canary ('' for none). Raises
    `CaptureFormatError` for a file that is not a capture; damage becomes
    `endpoints.stats.warnings` (and the name index's warnings)."""
    reader = PcapReader(pcap_path)
    endpoints = EndpointCounter(guests, infrastructure)
    variants = endpoints.columns.variants
    number = {v: i for i, v in enumerate(variants)}
    guest_index = AddrIndex({a: number[v] for a, v in endpoints.guest_of.items()})
    names = NameConsumer(endpoints.guest_of, guest_index, variants)
    bursts = BurstConsumer(variants)
    consumers: list[Any] = [names, bursts]
    hits = CanaryConsumer(canary, variants) if canary else None
    if hits is not None:
        consumers.append(hits)
    flows: Flows = {}
    decoders: dict[int, Any] = {}
    for batch in reader.scan_batches(flows):
        parts = []
        for c in batch.columns:
            guest = guest_index.find(c.version, c.src)  # the same numbers as endpoints'
            endpoints.add(c, guest)
            parts.append(Part(batch.buf, c, guest))
        if batch.odd:
            parts += _odd_parts(batch, guest_index, decoders)
        for consumer in consumers:
            consumer.add(parts)
    report = endpoints.report(str(pcap_path), reader, flows)
    index = names.scanner.index
    index.warnings.extend(reader.warnings)
    found = plaintext_hits(hits.found, canary) if hits is not None else []
    timed = {k: tuple(v) for k, v in named_bursts(bursts.starts).items()}
    return CaptureScan(report, index, tuple(found), timed, reader.stopped)
