"""``verdicts.json``: one :class:`Verdict` per expectation — ``pass``, ``fail`` or
``inconclusive``, with its reason, its evidence and the GeoIP databases behind it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from testbed.run.manifest import ChatClaim
from testbed.run.places import GeoipDatabase
from testbed.run.shapes import Record, Shape, obj, records

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


@dataclass(frozen=True)
class Verdict(Record):
    """``evidence`` items are JSON records whose keys depend on their ``kind`` (``flow``,
    ``absence``, ``screen``, ``canary-*``, ``timing``); each has a ``strength`` and most a
    ``text`` a researcher can read."""

    json_defaults: ClassVar[Mapping[str, Any]] = {"variant": "", "kind": "", "reason": ""}

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
