"""Chat paths: each message, the endpoints its evidence points to, and an alert when its
content (or, by timing, its traffic) reached one of the study's places."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from testbed.run import files

from .data import RunData
from .fmt import fmt_time, num, place_text, text
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


def _order(ev: dict[str, Any]) -> tuple[int, int, float]:
    """Strongest first, canary hits before timing, then by time."""
    kind = str(ev.get("kind") or "")
    return (STRENGTH_RANK.get(str(ev.get("strength")), 3),
            0 if kind.startswith("canary") else 1, num(ev.get("time")) or 0.0)


def _alert(evs: list[dict[str, Any]], places: dict[str, dict[str, Any]],
           highlight: Highlight) -> Alert | None:
    def hot(ev: dict[str, Any]) -> bool:
        a = str(ev.get("address"))
        return highlight.marks(a, places.get(a))

    strong = sorted({str(x.get("address")) for x in evs
                     if hot(x) and x.get("strength") == "strong"})
    weak = sorted({str(x.get("address")) for x in evs if hot(x)} - set(strong))
    for level, addresses in (("fail", strong), ("warn", weak)):
        if addresses:
            return Alert(level, highlight.label_of(addresses, places), tuple(addresses))
    return None


def _chat(chat: dict[str, Any], places: dict[str, dict[str, Any]],
          highlight: Highlight) -> Chat:
    evs = sorted((x for x in chat.get("evidence") or [] if isinstance(x, dict)), key=_order)
    eps = []
    for a in chat.get("endpoints") or []:
        p = places.get(str(a), {})
        who = sorted({str(x.get("variant")) for x in evs if x.get("address") == a})
        eps.append(Endpoint(str(a), place_text(p), text(p.get("stands_for") or ""),
                            ", ".join(who), highlight.marks(str(a), p)))
    rows = []
    for x in evs:
        a = str(x.get("address"))
        rows.append(Evidence(
            strength=text(x.get("strength")), kind=text(x.get("kind")),
            variant=text(x.get("variant")), address=text(x.get("address")),
            proto=text(x.get("proto")), port=text(x.get("port")),
            where=place_text(places.get(a, {})), hot=highlight.marks(a, places.get(a)),
            time=fmt_time(x.get("time"), clock_only=True), detail=text(x.get("detail"))))
    return Chat(sender=text(chat.get("sender")), recipient=text(chat.get("recipient")),
                canary=bool(chat.get("has_canary")), start=fmt_time(chat.get("start")),
                text=text(chat.get("text")), alert=_alert(evs, places, highlight),
                endpoints=tuple(eps), evidence=tuple(rows))


def chats(data: RunData, highlight: Highlight) -> Chats:
    found = data.evidence.get("chats")
    if not isinstance(found, list):
        return Chats(data.problems.get(files.EVIDENCE, "empty"), "", ())
    canary = data.evidence.get("canary") or data.manifest.get("canary")
    return Chats("", text(canary),
                 tuple(_chat(c, data.places, highlight) for c in found if isinstance(c, dict)))
