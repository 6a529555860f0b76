"""``analysis/evidence.json``: the run's canary and, per chat message, the evidence of the
path it took (canary hits: strong; timing bursts: weak)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from testbed.run.shapes import flag, integer, number, obj, opt_text, records, text, texts


@dataclass(frozen=True)
class ChatEvidence:
    """Why a message is taken to have gone to endpoint (address, proto, port) of ``variant``
    (or, for a canary hit not yet tied to a message, why the variant reached it): ``kind`` is
    one of ``analysis.evidence.KINDS``; ``time`` is seconds since the epoch (first hit / burst
    start); ``strength`` is "strong" for canary hits, "weak" for timing; ``detail`` is one
    human sentence."""

    kind: str
    variant: str
    address: str
    port: int
    proto: str
    time: float
    strength: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "variant": self.variant, "address": self.address,
                "port": self.port, "proto": self.proto, "time": self.time,
                "strength": self.strength, "detail": self.detail}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ChatEvidence:
        return cls(text(d, "kind"), text(d, "variant"), text(d, "address"), integer(d, "port"),
                   text(d, "proto"), number(d, "time"), text(d, "strength"),
                   text(d, "detail", ""))


@dataclass(frozen=True)
class ChatRecord:
    """One chat message that was sent, and the evidence of its path."""

    sender: str
    recipient: str
    start: float
    end: float | None = None
    text: str = ""
    has_canary: bool = False
    endpoints: tuple[str, ...] = ()
    evidence: tuple[ChatEvidence, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"sender": self.sender, "recipient": self.recipient, "text": self.text,
                "start": self.start, "end": self.end, "has_canary": self.has_canary,
                "endpoints": list(self.endpoints),
                "evidence": [e.to_json() for e in self.evidence]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ChatRecord:
        end = d.get("end")
        return cls(sender=text(d, "sender"), recipient=text(d, "recipient"),
                   start=number(d, "start"), end=None if end is None else number(d, "end"),
                   text=text(d, "text", ""), has_canary=flag(d, "has_canary"),
                   endpoints=texts(d, "endpoints"),
                   evidence=records(d, "evidence", ChatEvidence.from_json))


@dataclass(frozen=True)
class EvidenceFile:
    canary: str | None = None
    chats: tuple[ChatRecord, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"canary": self.canary, "chats": [c.to_json() for c in self.chats]}

    @classmethod
    def from_json(cls, value: Any) -> EvidenceFile:
        d = obj(value, "the chat evidence")
        return cls(canary=opt_text(d, "canary"), chats=records(d, "chats", ChatRecord.from_json))
