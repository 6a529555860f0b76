"""What verdicts rest on, read from a run directory through ``testbed.run``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from testbed.run import (
    CaptureCounts,
    ChatRecord,
    EndpointRow,
    Event,
    Expectation,
    GeoipDatabase,
    Placement,
    TlsRecord,
    store,
)
from testbed.run.places import NOWHERE


@dataclass(frozen=True)
class RunFacts:
    """The run's expectations, its endpoints and their places, the capture's statistics, what
    each variant did (``events``; derived: ``failed_actions``, variant -> "action outcome:
    error"), chat paths and the TLS connections that were pinned shut."""

    endpoints: tuple[EndpointRow, ...]
    places: Mapping[str, Placement]
    capture: CaptureCounts
    geoip: tuple[GeoipDatabase, ...]
    events: tuple[Event, ...] = ()
    chats: tuple[ChatRecord, ...] = ()
    canary: str = ""
    pinned: tuple[TlsRecord, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    actions: tuple[Event, ...] = field(init=False)  # the timed events, in order
    failed_actions: Mapping[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        timed = sorted((e for e in self.events if e.timed), key=lambda e: e.start or 0.0)
        object.__setattr__(self, "actions", tuple(timed))
        failed: dict[str, list[str]] = {}
        for e in self.events:
            if not e.ok:
                failed.setdefault(e.variant, []).append(f"{e.action} {e.outcome}: {e.error}")
        object.__setattr__(self, "failed_actions", failed)

    def place(self, address: str) -> Placement:
        return self.places.get(address, NOWHERE)

    def silence(self, variant: str) -> list[str]:
        """The doubt a capture holding no traffic of ``variant`` raises (none when it holds
        some): an empty capture rules nothing out."""
        if any(e.variant == variant for e in self.endpoints):
            return []
        return [f"no traffic of {variant} was captured"]

    def doubts(self, variant: str) -> list[str]:
        """Why a negative claim about ``variant`` could not be trusted on this run."""
        out = []
        if not self.capture.complete:
            out.append("the capture is incomplete (tcpdump did not stop cleanly)")
        elif self.capture.dropped:
            out.append(f"the capture dropped {self.capture.dropped} packets")
        if self.failed_actions.get(variant):
            out.append(f"{variant}'s actions did not all succeed: "
                       + "; ".join(self.failed_actions[variant]))
        return out

    def action_at(self, variant: str, t: float) -> str:
        """Which action of ``variant`` was under way at time ``t`` (for sentences)."""
        mine = [e for e in self.actions if e.variant == variant]
        for e in mine:
            if (e.start or 0.0) <= t <= (e.end or 0.0):
                return f"during {e.action}"
        before = [e for e in mine if (e.end or 0.0) < t]
        return f"after {before[-1].action}" if before else "before the first action"

    @classmethod
    def load(cls, run: Path) -> RunFacts:
        manifest = store.open_manifest(run)
        analysis = store.read_endpoints(run)
        events, _ = store.read_events(run)
        evidence = store.read_evidence(run)
        tls, _ = store.read_tls(run)
        return cls(endpoints=analysis.endpoints if analysis else (),
                   places=analysis.places if analysis else {},
                   capture=manifest.capture or CaptureCounts(),
                   geoip=analysis.geoip if analysis else (), events=tuple(events),
                   chats=evidence.chats if evidence else (), canary=manifest.canary or "",
                   pinned=tuple(t for t in tls if t.event == "pinned"),
                   expectations=manifest.expectations)
