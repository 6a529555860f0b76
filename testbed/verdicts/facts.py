"""What verdicts rest on, read from a run directory through ``testbed.run``, and the one rule
every claim is settled by (:func:`settle`).

The rule: evidence *for* what a claim names (a flow into the place, the canary on a path
through it, the receiver's screen showing the message) settles the claim: ``pass`` for a
positive claim, ``fail`` for a negative one. Without such evidence the claim rests on absence,
and absence proves something only where the evidence that would have shown it exists, for the
claim's parties and its whole time. Any doubt (:meth:`RunFacts.doubts`: a capture that is
empty, lossy, cut or missing before the claim's time is over, a flow file or TLS log missing,
an action that failed or was never recorded, an endpoint nobody could place) makes it
``inconclusive``, with the doubts as its reason. Only then does absence settle it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from testbed.analysis.classify import LOCAL_KINDS
from testbed.capture.outcomes import UNCLASSIFIED, TlsOutcome, classify
from testbed.run import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    CaptureCounts,
    CaptureDamage,
    ChatEvidence,
    ChatRecord,
    EndpointRow,
    Event,
    Expectation,
    GeoipDatabase,
    Placement,
    store,
)
from testbed.run import files as f
from testbed.run.places import NOWHERE
from testbed.run.vantage import ROUTE_DOWN, Vantage, route_downs


def settle(positive: bool, found: bool, doubts: Iterable[str]) -> str:
    """The status of a claim (see the module's docstring): ``found`` is whether evidence for
    what the claim names was found; ``doubts`` why its absence would prove nothing."""
    if found:
        return PASS if positive else FAIL
    if any(True for _ in doubts):
        return INCONCLUSIVE
    return FAIL if positive else PASS


@dataclass(frozen=True)
class RunFacts:
    """The run's expectations, its endpoints and their places, the capture's statistics and
    damage, what each variant did (``events``; derived: ``failed_actions``, variant -> "action
    outcome: error"), chat paths and the TLS outcome of every client and host
    (``testbed.capture.outcomes``)."""

    endpoints: tuple[EndpointRow, ...]
    places: Mapping[str, Placement]
    capture: CaptureCounts
    geoip: tuple[GeoipDatabase, ...]
    events: tuple[Event, ...] = ()
    chats: tuple[ChatRecord, ...] = ()
    canary: str = ""
    canary_hits: tuple[ChatEvidence, ...] = ()  # every hit of the canary (analysis/canary.json)
    tls: tuple[TlsOutcome, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    damage: tuple[CaptureDamage, ...] = ()
    clients: Mapping[str, str] = field(default_factory=dict)  # variant -> its guest's address
    vantage: Mapping[str, Vantage] = field(default_factory=dict)  # variant -> measured from
    actions: tuple[Event, ...] = field(init=False)  # the timed events, in order
    failed_actions: Mapping[str, list[str]] = field(init=False)
    route_down: Mapping[str, tuple[float, str]] = field(init=False)  # variant -> when, why

    def __post_init__(self) -> None:
        timed = sorted((e for e in self.events if e.timed), key=lambda e: e.start or 0.0)
        object.__setattr__(self, "actions", tuple(timed))
        object.__setattr__(self, "route_down", route_downs(self.events))
        failed: dict[str, list[str]] = {}
        for e in self.events:
            if not e.ok and e.action != ROUTE_DOWN:  # a route's death is judged by its time
                failed.setdefault(e.variant, []).append(f"{e.action} {e.outcome}: {e.error}")
        object.__setattr__(self, "failed_actions", failed)

    def place(self, address: str) -> Placement:
        return self.places.get(address, NOWHERE)

    def unplaced(self, addresses: Iterable[str]) -> list[str]:
        """The doubt endpoints nobody could place raise: neither in a country nor of a kind
        that stays on the local network (multicast, private, ...)."""
        out = sorted({a for a in addresses if not self.place(a).country
                      and self.place(a).special not in LOCAL_KINDS})
        if not out:
            return []
        named = [f"{a} ({self.place(a).special or 'in no database'})" for a in out[:5]]
        return [f"{len(out)} endpoints could not be placed: " + ", ".join(named)
                + (f" and {len(out) - 5} more" if len(out) > 5 else "")]

    def silence(self, variant: str) -> list[str]:
        """The doubt a capture holding no traffic of ``variant`` raises (none when it holds
        some): an empty capture rules nothing out."""
        if any(e.variant == variant for e in self.endpoints):
            return []
        return [f"no traffic of {variant} was captured"]

    def doubts(self, variant: str, until: float = math.inf, capture: bool = True,
               content: bool = False) -> list[str]:
        """Why the absence of evidence about ``variant`` up to time ``until`` (the end of the
        claim's time; by default the whole run) could not be trusted on this run: what the
        capture lost (with ``capture``; with ``content`` also the decrypted content: the flow
        file and the TLS log), and the variant's actions that failed or were never recorded."""
        out = []
        if capture:
            if not self.capture.complete:
                out.append("the capture is incomplete (tcpdump did not stop cleanly)")
            elif self.capture.dropped:
                out.append(f"the capture dropped {self.capture.dropped} packets")
            out += [d.sentence() for d in self.damage
                    if (content or d.file == f.PCAP) and d.covers(until)]
            out += self.route_doubts(variant, until)  # its traffic, like the capture's
        if self.failed_actions.get(variant):
            out.append(f"{variant}'s actions did not all succeed: "
                       + "; ".join(self.failed_actions[variant]))
        if not any(e.variant == variant for e in self.events):
            out.append(f"no action of {variant} was recorded ({f.EVENTS} holds none), so "
                       "nothing shows it ran")
        return out

    def route_doubts(self, variant: str, until: float = math.inf) -> list[str]:
        """The doubts ``variant``'s route raises about its traffic up to ``until``: the route
        died before then (its packets were dropped from that moment on), or it was ``drop``
        (nothing could leave the lab, so the run shows only what was tried)."""
        out = []
        down = self.route_down.get(variant)
        if down is not None and down[0] < until:
            out.append(f"{variant}'s {down[1]}, so what it would have reached after that is "
                       "unknown")
        vantage = self.vantage.get(variant)
        if vantage is not None and vantage.route == "drop":
            out.append(f"{variant}'s route is drop: nothing could leave the lab, so the run "
                       "shows only what it tried")
        return out

    def unopened(self, windows: Iterable[tuple[float, float]]) -> list[str]:
        """The doubts TLS the gateway did not open raises when a connection of it started in one
        of ``windows``: its content (a canary, a path) could not be seen, and a connection
        nobody could classify must not carry a claim either way."""
        spans = list(windows)
        hit: dict[str, list[str]] = {}
        for o in self.tls:
            if not o.opened and any(a <= t <= b for t in o.times for a, b in spans):
                hit.setdefault(o.outcome, []).append(o.host)
        out = []
        for outcome, hosts in sorted(hit.items()):
            named = ", ".join(sorted(set(hosts)))
            out.append(f"TLS to {named} could not be classified (outcome {UNCLASSIFIED})"
                       if outcome == UNCLASSIFIED else
                       f"TLS to {named} could not be opened (outcome {outcome})")
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
        canary = store.read_canary(run)
        tls, _ = store.read_tls(run)
        return cls(endpoints=analysis.endpoints if analysis else (),
                   places=analysis.places if analysis else {},
                   capture=manifest.capture or CaptureCounts(),
                   geoip=analysis.geoip if analysis else (), events=tuple(events),
                   chats=evidence.chats if evidence else (), canary=manifest.canary or "",
                   canary_hits=canary.hits if canary else (),
                   tls=classify(tls),
                   expectations=manifest.expectations,
                   damage=analysis.damage if analysis else (), clients=manifest.guests,
                   vantage=manifest.vantage)
