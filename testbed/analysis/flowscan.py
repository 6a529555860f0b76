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
    names: NameIndex
    canary_hits: tuple[ChatEvidence, ...]
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"names": self.names.to_json(),
                "canary_hits": [e.to_json() for e in self.canary_hits],
                "warnings": list(self.warnings)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FlowScan:
        return cls(NameIndex.from_json(data["names"]),
                   tuple(ChatEvidence.from_json(e) for e in data["canary_hits"]),
                   tuple(str(w) for w in data["warnings"]))


def scan_flows(path: str | os.PathLike[str], guests: Mapping[str, str],
               canary: str) -> FlowScan:
    """Names and (when `canary`) canary hits of the flow file; damage after the first
    flow becomes `warnings`, anything worse raises `AnalysisError` (see `read_flows`)."""
    warnings: list[str] = []
    index = NameIndex()
    records = read_flows(path, warnings.append)
    if not canary:
        names_from_flows(index, records, guests)
        return FlowScan(index, (), tuple(warnings))

    def named(records: Iterable[FlowRecord]) -> Iterator[FlowRecord]:
        for rec in records:
            names_from_flows(index, (rec,), guests)
            yield rec

    hits = canary_in_flows(named(records), guests, canary)
    return FlowScan(index, tuple(hits), tuple(warnings))
