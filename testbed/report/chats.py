"""Chat paths: each message, the endpoints its evidence points to, and an alert when its
content (or, by timing, its traffic) reached one of the study's places."""

from __future__ import annotations

from dataclasses import dataclass

from testbed.run import ChatEvidence, ChatRecord, files

from .data import RunData
from .fmt import fmt_time, place_text, text
from .highlight import Highlight

STRENGTH_RANK = {"strong": 0, "complete-capture": 0, "observed": 1, "medium": 1, "weak": 2}


@dataclass(frozen=True)
class Endpoint:
    address: str
    where: str
    stands_for: str
    senders: str  # the variants whose evidence points here
    hot: bool


@dataclass(frozen=True)
class Evidence:
    strength: str
    kind: str
    variant: str
    address: str
    proto: str
    port: str
    where: str
    hot: bool
    time: str
    detail: str


@dataclass(frozen=True)
class Alert:
    level: str  # "fail": the content reached a place; "warn": timing suggests it did
    place: str  # the places reached, in one phrase
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Chat:
    sender: str
    recipient: str
    canary: bool  # carries the run's canary (else a neutral control message)
    start: str
    text: str
    alert: Alert | None
    endpoints: tuple[Endpoint, ...]
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True)
class Chats:
    problem: str  # why there is no chat evidence (empty when there is)
    canary: str
    items: tuple[Chat, ...]


def _order(ev: ChatEvidence) -> tuple[int, int, float]:
    """Strongest first, canary hits before timing, then by time."""
    return (STRENGTH_RANK.get(ev.strength, 3), 0 if ev.kind.startswith("canary") else 1,
            ev.time)


def _alert(evs: list[ChatEvidence], data: RunData, highlight: Highlight) -> Alert | None:
    def hot(ev: ChatEvidence) -> bool:
        return highlight.marks(ev.address, data.place(ev.address))

    strong = sorted({x.address for x in evs if hot(x) and x.strength == "strong"})
    weak = sorted({x.address for x in evs if hot(x)} - set(strong))
    for level, addresses in (("fail", strong), ("warn", weak)):
        if addresses:
            return Alert(level, highlight.label_of(addresses, data.place), tuple(addresses))
    return None


def _chat(chat: ChatRecord, data: RunData, highlight: Highlight) -> Chat:
    evs = sorted(chat.evidence, key=_order)
    eps = []
    for a in chat.endpoints:
        p = data.place(a)
        who = sorted({x.variant for x in evs if x.address == a})
        eps.append(Endpoint(a, place_text(p), p.stands_for or "", ", ".join(who),
                            highlight.marks(a, p)))
    rows = []
    for x in evs:
        p = data.place(x.address)
        rows.append(Evidence(
            strength=x.strength, kind=x.kind, variant=x.variant, address=x.address,
            proto=x.proto, port=str(x.port), where=place_text(p),
            hot=highlight.marks(x.address, p), time=fmt_time(x.time, clock_only=True),
            detail=x.detail))
    return Chat(sender=chat.sender, recipient=chat.recipient, canary=chat.has_canary,
                start=fmt_time(chat.start), text=chat.text,
                alert=_alert(evs, data, highlight), endpoints=tuple(eps), evidence=tuple(rows))


def chats(data: RunData, highlight: Highlight) -> Chats:
    if data.evidence is None:
        return Chats(data.problems.get(files.EVIDENCE, "empty"), "", ())
    canary = data.evidence.canary or data.manifest.canary
    return Chats("", text(canary), tuple(_chat(c, data, highlight) for c in data.evidence.chats))
