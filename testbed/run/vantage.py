"""Where a variant was measured from (OONI's ``probe_cc``/``probe_asn``/resolver envelope):
``manifest.json``'s ``vantage``, variant -> :class:`Vantage`; and the route events of
``events.jsonl`` (``route-down``: when a route died and its packets began to be dropped).

The gateway records the route, the egress address and how it was learnt (an echo URL the
route names, or the tunnel's config), and the resolver; the analysis places both addresses
with the run's databases (country, ASN, organisation, and which database said so).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from testbed.run.events import Event
from testbed.run.shapes import Record

#: the action of the event the gateway appends when a route dies (``events.jsonl``)
ROUTE_DOWN = "route-down"


@dataclass(frozen=True)
class Vantage(Record):
    route: str = "simulated"  # simulated, internet, vpn, drop
    label: str = "simulated"  # e.g. "vpn cn-shanghai.conf"
    egress: str | None = None  # the egress address as the outside sees it
    egress_from: str | None = None  # "echo http://…/ip", "tunnel config", …
    country: str | None = None
    asn: int | None = None
    organization: str | None = None
    database: str | None = None  # which database placed the egress
    resolver: str | None = None
    resolver_country: str | None = None
    resolver_asn: int | None = None

    def details(self) -> str:
        """``egress 203.0.113.80 (echo …), resolver 10.99.0.1 (CN, AS4134)``: what backs the
        sentence, for the report's header."""
        out = []
        if self.egress:
            out.append(f"egress {self.egress}" + (f" ({self.egress_from})"
                                                  if self.egress_from else ""))
        if self.resolver:
            where = [x for x in (self.resolver_country,
                                 f"AS{self.resolver_asn}" if self.resolver_asn else None) if x]
            out.append(f"resolver {self.resolver}" + (f" ({', '.join(where)})" if where else ""))
        return ", ".join(out)

    def sentence(self) -> str:
        """``measured from CN, AS4134, via vpn cn-shanghai.conf`` (what is known of it)."""
        if self.route == "simulated":
            return "measured from the lab's simulated internet"
        if self.route == "drop":
            return "measured with route drop (nothing left the lab)"
        where = [x for x in (self.country, f"AS{self.asn}" if self.asn else None) if x]
        if not where and self.egress:
            where = [self.egress]
        return f"measured from {', '.join(where) or 'an unknown place'}, via {self.label}"


@dataclass(frozen=True)
class RouteDown:
    """A route that died during the run: when, why, and the variants whose packets it took."""

    label: str
    at: float
    reason: str
    variants: tuple[str, ...]

    def sentence(self) -> str:
        when = datetime.datetime.fromtimestamp(self.at, datetime.UTC).strftime("%H:%M:%S")
        return (f"route {self.label} died at {when} UTC ({self.reason}); its packets were "
                "dropped from then on")

    def events(self) -> list[Event]:
        return [Event(variant=v, action=ROUTE_DOWN, start=self.at, outcome="dropped",
                      error=self.sentence(), params={"route": self.label})
                for v in self.variants]


def route_downs(events: Iterable[Event]) -> dict[str, tuple[float, str]]:
    """Variant -> (when its route died, the sentence), the first death of each."""
    out: dict[str, tuple[float, str]] = {}
    for e in events:
        if e.action == ROUTE_DOWN and e.start is not None and e.variant not in out:
            out[e.variant] = (e.start, e.error or f"the route of {e.variant} died")
    return out
