"""``manifest.json``: what a run was (scenario, tools, expectations) and how it went (phases,
guests, capture statistics, status), written piece by piece while the run goes.

Every key is optional, since a run that crashed early has only the first ones; keys this
version does not know are kept (``extra``) so that rewriting a newer run's manifest loses
nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from testbed.run.liveness import effective_status
from testbed.run.places import GeoipDatabase
from testbed.run.shapes import Record, Shape, obj, optional, other_keys, scalar
from testbed.run.vantage import Vantage

#: the expectation kinds, defined once: claims about where a variant went, and about a chat
REACH_KINDS = ("reaches", "never_reaches", "only_reaches")
CHAT_KINDS = ("passes_through", "does_not_pass_through", "delivered", "not_delivered")
#: claims on where the run's canary went, whichever action typed it (a form, a message, ...)
CANARY_KINDS = ("canary_reaches", "canary_never_reaches")
# claims on where a call's media (its UDP flows during the call) goes (verdicts.call)
MEDIA_KINDS = ("media_passes_through", "media_does_not_pass_through")
# claims on what a variant's download got (verdicts.download): redirected to a host (a glob),
# or not; served a body of a given sha256
DOWNLOAD_KINDS = ("redirected_to", "not_redirected_to", "served")


@dataclass(frozen=True)
class ScenarioRef(Record):
    name: str | None = None
    path: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Phase(Record):
    """One timed phase of the run (network, guests, sessions, ...)."""

    start: float | None = None
    status: str = "running"
    end: float | None = None
    error: str | None = None
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start, "status": self.status}
        for key in ("end", "error", "seconds"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class CaptureCounts(Record):
    """tcpdump's statistics; ``complete`` when it printed them (it stopped cleanly)."""

    captured: int | None = None
    received: int | None = None
    dropped: int | None = None
    complete: bool = False


@dataclass(frozen=True)
class ChatClaim:
    """The messages a chat expectation is about: from ``sender`` to ``recipient``, whose text
    contains ``text_contains`` (``{canary}`` stands for the run's canary)."""

    sender: str
    recipient: str
    text_contains: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"from": self.sender, "to": self.recipient}
        return out if self.text_contains is None else out | {"text_contains": self.text_contains}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ChatClaim:
        return cls(scalar(d, "from", str), scalar(d, "to", str),
                   optional(d, "text_contains", str))


@dataclass(frozen=True)
class Expectation(Record):
    """One claim of the scenario, as the manifest records it. A place is a mapping of
    ``country`` / ``asn`` / ``organization`` / ``network`` / ``host`` (see verdicts.places)."""

    id: str
    kind: str = ""
    variant: str = ""
    place: dict[str, Any] = field(default_factory=dict)
    places: tuple[dict[str, Any], ...] = ()
    chat: ChatClaim | None = None
    min_strength: str = ""
    description: str = ""
    tls: str = ""  # the TLS outcome the claim expects (one of TLS_OUTCOMES), or none
    call: ChatClaim | None = None  # media claims: the call's parties (``from`` called ``to``)
    download: str = ""  # download claims: the URL the variant asked for (else any download)

    @property
    def all_places(self) -> list[dict[str, Any]]:
        """The places the claim names (``places``, or failing that ``place``)."""
        return list(self.places) or [self.place]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "variant": self.variant, "kind": self.kind, "place": self.place,
                "places": list(self.places),
                "chat": self.chat.to_json() if self.chat else None,
                "min_strength": self.min_strength, "description": self.description,
                **({"tls": self.tls} if self.tls else {}),
                **({"call": self.call.to_json()} if self.call else {}),
                **({"download": self.download} if self.download else {})}

    @classmethod
    def read_otherwise(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        places = d.get("places") or []  # older manifests may hold an empty object
        if not isinstance(places, list):
            raise Shape(f"'places' should be a list, not {type(places).__name__}")
        return {"places": tuple(dict(obj(p, f"places[{i}]")) for i, p in enumerate(places))}


@dataclass(frozen=True)
class Manifest(Record):
    json_what = "the manifest"

    testbed_run: int | None = None
    run_id: str | None = None
    status: str | None = None
    started: float | None = None
    finished: float | None = None
    scenario: ScenarioRef | None = None
    # the simulated internet's data file, validated as the run started (sha256: its copy's)
    internet: ScenarioRef | None = None
    provider: str | None = None
    canary: str | None = None
    tools: dict[str, str] = field(default_factory=dict)
    expectations: tuple[Expectation, ...] = ()
    phases: dict[str, Phase] = field(default_factory=dict)
    infrastructure: dict[str, str] = field(default_factory=dict)  # address -> role
    lab: dict[str, Any] = field(default_factory=dict)
    guests: dict[str, str] = field(default_factory=dict)  # variant -> address
    capture: CaptureCounts | None = None
    geoip: tuple[GeoipDatabase, ...] = ()
    error: str | None = None
    reanalysis_of: str | None = None
    reanalysis_databases: tuple[str, ...] = ()
    process: dict[str, Any] = field(default_factory=dict)  # the run's owner (run.liveness)
    lab_status: str | None = None  # how the lab part ended, while analysis is still to come
    vantage: dict[str, Vantage] = field(default_factory=dict)  # variant -> where measured from
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    @property
    def current_status(self) -> str:
        """The status as it stands now: ``abandoned`` when the run's process is gone."""
        return effective_status(self.status, self.process)

    @property
    def address_to_variant(self) -> dict[str, str]:
        return {address: variant for variant, address in self.guests.items()}

    def to_json(self) -> dict[str, Any]:
        """The manifest as written: keys that were never set are left out."""
        out: dict[str, Any] = {
            "testbed_run": self.testbed_run, "run_id": self.run_id, "status": self.status,
            "started": self.started,
            "scenario": self.scenario.to_json() if self.scenario else None,
            "internet": self.internet.to_json() if self.internet else None,
            "provider": self.provider, "canary": self.canary, "tools": self.tools,
            "expectations": [e.to_json() for e in self.expectations],
            "phases": {k: p.to_json() for k, p in self.phases.items()},
            "infrastructure": self.infrastructure, "lab": self.lab, "guests": self.guests,
            "capture": self.capture.to_json() if self.capture else None,
            "geoip": [g.to_json() for g in self.geoip], "finished": self.finished,
            "error": self.error, "reanalysis_of": self.reanalysis_of,
            "reanalysis_databases": list(self.reanalysis_databases),
            "process": self.process, "lab_status": self.lab_status,
            "vantage": {v: x.to_json() for v, x in self.vantage.items()}}
        return {k: v for k, v in out.items() if v not in (None, [], {})} | self.extra

    def updated(self, **fields: Any) -> Manifest:
        """This manifest with ``fields`` (in their JSON form) set."""
        return Manifest.from_json(self.to_json() | fields)

    @classmethod
    def read_otherwise(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"extra": other_keys(cls, d, but="extra")}
