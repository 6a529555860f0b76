"""One pass over the mitmproxy flow file: the names (HTTP Host, SNI) and the canary
hits in decrypted content, with the flow file's warnings. The flow file is read once
(streaming): each record goes to `names.names_from_flows` and on to
`evidence.canary_in_flows`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from testbed.run.evidence import ChatEvidence

from .evidence import canary_in_flows
from .flows import FlowRecord, read_flows
from .names import NameIndex, names_from_flows

__all__ = ["FlowScan", "scan_flows"]


@dataclass(frozen=True)
class FlowScan:
    """``flows``: how many flows were read (``tls_flows``: of them over TLS); ``stopped``: the
    warning of the damage that ended the reading early (None: read to the end);
    ``read_until``: the latest time a flow read shows (None: no flow)."""

    names: NameIndex
    canary_hits: tuple[ChatEvidence, ...]
    warnings: tuple[str, ...]
    flows: int = 0
    tls_flows: int = 0
    stopped: str | None = None
    read_until: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"names": self.names.to_json(),
                "canary_hits": [e.to_json() for e in self.canary_hits],
                "warnings": list(self.warnings), "flows": self.flows,
                "tls_flows": self.tls_flows,
                "stopped": self.stopped, "read_until": self.read_until}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FlowScan:
        stopped, until = data.get("stopped"), data.get("read_until")
        return cls(NameIndex.from_json(data["names"]),
                   tuple(ChatEvidence.from_json(e) for e in data["canary_hits"]),
                   tuple(str(w) for w in data["warnings"]), int(data.get("flows", 0)),
                   int(data.get("tls_flows", 0)),
                   None if stopped is None else str(stopped),
                   None if until is None else float(until))


def scan_flows(path: str | os.PathLike[str], guests: Mapping[str, str],
               canary: str) -> FlowScan:
    """Names and (when `canary`) canary hits of the flow file; damage after the first
    flow becomes `warnings`, anything worse raises `AnalysisError` (see `read_flows`)."""
    warnings: list[str] = []
    index = NameIndex()
    count = tls = 0
    until: float | None = None

    def named(records: Iterable[FlowRecord]) -> Iterator[FlowRecord]:
        nonlocal count, tls, until
        for rec in records:
            count += 1
            tls += bool(rec.sni)
            latest = max([rec.timestamp_start, *(m.timestamp for m in rec.messages)])
            until = latest if until is None else max(until, latest)
            names_from_flows(index, (rec,), guests)
            yield rec

    records = named(read_flows(path, warnings.append))
    hits: tuple[ChatEvidence, ...] = ()
    if canary:
        hits = tuple(canary_in_flows(records, guests, canary))
    else:
        for _ in records:
            pass
    return FlowScan(index, hits, tuple(warnings), count, tls,
                    warnings[-1] if warnings else None, until)
