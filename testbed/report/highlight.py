"""What the report highlights: the places the scenario's expectations name.

A study is about some places (the seed study about China, a data-residency study about
Germany and France). The report marks the endpoints in those places, names them in the
summary, the legend, the filter and the chat alerts, and lists their countries first in the
charts. Nothing here knows a study: the places come from the run (the manifest's
expectations, and the verdicts' places for runs whose manifest lacks them); a place is matched
exactly as the verdicts match it (:mod:`testbed.verdicts.places`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from testbed.run.places import Placement
from testbed.run.shapes import Shape
from testbed.verdicts.places import contains, describe

from .data import RunData
from .fmt import as_dict, join_or


def named_places(data: RunData) -> list[dict[str, Any]]:
    """Every place the run's expectations name, once each, in order of first mention."""
    found: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(candidates: Iterable[Any]) -> None:
        for place in candidates:
            key = json.dumps(place, sort_keys=True, default=str)
            if isinstance(place, dict) and place and key not in seen:
                seen.add(key)
                found.append(place)

    expectations = data.manifest.get("expectations")
    claims = [*(expectations if isinstance(expectations, list) else []), *(data.verdicts or [])]
    for claim in claims:
        if isinstance(claim, dict):
            places = claim.get("places")
            add(places if isinstance(places, list) and places else [claim.get("place")])
    return found


def _country_name(code: str, places: dict[str, dict[str, Any]]) -> str:
    """The country's name as the run's databases spell it, else its code."""
    for info in places.values():
        if not isinstance(info, dict):
            continue
        if info.get("country") == code and info.get("country_name"):
            return str(info["country_name"])
        for view in info.get("views") or []:
            if isinstance(view, dict) and view.get("country") == code and view.get("country_name"):
                return str(view["country_name"])
    return code


@dataclass(frozen=True)
class Highlight:
    """The places a run is about, with a reader's name for each (``China``, ``AS4134``)."""

    places: tuple[dict[str, Any], ...] = ()
    names: tuple[str, ...] = ()

    @classmethod
    def of(cls, data: RunData) -> Highlight:
        places = named_places(data)
        names = [_country_name(str(p["country"]), data.places) if list(p) == ["country"]
                 else describe(p) for p in places]
        return cls(tuple(places), tuple(names))

    def __bool__(self) -> bool:
        return bool(self.places)

    @property
    def label(self) -> str:
        """All the places in one phrase: ``China``, ``Germany or France``; empty for none."""
        return join_or(list(dict.fromkeys(self.names))) if self.names else ""

    @property
    def countries(self) -> frozenset[str]:
        """Country codes the places name (the charts' rows to mark)."""
        return frozenset(str(p["country"]) for p in self.places if p.get("country"))

    def names_of(self, address: str, info: dict[str, Any] | None) -> list[str]:
        """The names of the places ``address`` (placed as ``info``) is in."""
        raw = as_dict(info)  # a damaged file must not break the page: only well-formed parts
        raw = {**raw, "views": [v for v in raw.get("views") or [] if isinstance(v, dict)],
               "names": [str(n) for n in raw.get("names") or []]}
        try:
            placed = Placement.from_json(raw)
        except Shape:
            return []
        return list(dict.fromkeys(n for p, n in zip(self.places, self.names, strict=True)
                                  if contains(p, address, placed)))

    def marks(self, address: str, info: dict[str, Any] | None) -> bool:
        """Whether ``address`` is in one of the places."""
        return bool(self.names_of(address, info))

    def label_of(self, addresses: Iterable[str], places: dict[str, dict[str, Any]]) -> str:
        """The places these addresses are in, in one phrase (``China``)."""
        names = [n for a in addresses for n in self.names_of(a, places.get(a))]
        return join_or(list(dict.fromkeys(names))) if names else ""
