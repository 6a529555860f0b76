"""``verdicts.json``: one :class:`Verdict` per expectation — ``pass``, ``fail`` or
``inconclusive``, with its reason, its evidence and the GeoIP databases behind it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from testbed.run.manifest import ChatClaim
from testbed.run.places import GeoipDatabase
from testbed.run.shapes import Shape, mapping, obj, objects, records, text, within

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


@dataclass(frozen=True)
class Verdict:
    """``evidence`` items are JSON records whose keys depend on their ``kind`` (``flow``,
    ``absence``, ``screen``, ``canary-*``, ``timing``); each has a ``strength`` and most a
    ``text`` a researcher can read."""

    id: str
    variant: str
    kind: str
    place: dict[str, Any]
    status: str
    reason: str
    evidence: tuple[dict[str, Any], ...] = ()
    geoip: tuple[GeoipDatabase, ...] = ()
    chat: ChatClaim | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "variant": self.variant, "kind": self.kind, "place": self.place,
                "status": self.status, "reason": self.reason, "evidence": list(self.evidence),
                "geoip": [g.to_json() for g in self.geoip],
                "chat": self.chat.to_json() if self.chat else None}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Verdict:
        chat = d.get("chat")
        return cls(id=text(d, "id"), variant=text(d, "variant", ""), kind=text(d, "kind", ""),
                   place=mapping(d, "place"), status=text(d, "status"),
                   reason=text(d, "reason", ""), evidence=objects(d, "evidence"),
                   geoip=records(d, "geoip", GeoipDatabase.from_json),
                   chat=None if chat is None else within("chat", ChatClaim.from_json, chat))


@dataclass(frozen=True)
class VerdictsFile:
    verdicts: tuple[Verdict, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"verdicts": [v.to_json() for v in self.verdicts]}

    @classmethod
    def from_json(cls, value: Any) -> VerdictsFile:
        if isinstance(value, list):  # the oldest runs wrote the bare list
            value = {"verdicts": value}
        d = obj(value, "the verdicts")
        if "verdicts" not in d:
            raise Shape("no 'verdicts' list")
        return cls(records(d, "verdicts", Verdict.from_json))
