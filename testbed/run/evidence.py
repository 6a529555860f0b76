"""``analysis/evidence.json``: the run's canary and, per chat message, the evidence of the
path it took (canary hits: strong; timing bursts: weak); ``analysis/canary.json``: every
canary hit of the run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from testbed.run.shapes import Record


@dataclass(frozen=True)
class ChatEvidence(Record):
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


@dataclass(frozen=True)
class ChatRecord(Record):
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


@dataclass(frozen=True)
class EvidenceFile(Record):
    json_what = "the chat evidence"

    canary: str | None = None
    chats: tuple[ChatRecord, ...] = ()


@dataclass(frozen=True)
class CanaryFile(Record):
    """``analysis/canary.json``: every hit of the run's canary in the capture (decrypted flows,
    plaintext packets), whichever action typed it: what ``canary_reaches`` claims judge."""

    json_what = "the canary hits"

    canary: str | None = None
    hits: tuple[ChatEvidence, ...] = ()
