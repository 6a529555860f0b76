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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from testbed.run import Placement
from testbed.verdicts.places import contains, describe

from .data import RunData
from .fmt import join_or


def named_places(data: RunData) -> list[dict[str, Any]]:
    """Every place the run's expectations name, once each, in order of first mention (the
    manifest's expectations, then the verdicts' places)."""
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    claims = [*(e.all_places for e in data.manifest.expectations),
              *([v.place] for v in data.verdicts or ())]
    for places in claims:
        for place in places:
            key = json.dumps(place, sort_keys=True, default=str)
            if place and key not in seen:
                seen.add(key)
                found.append(place)
    return found


def _country_name(code: str, places: Mapping[str, Placement]) -> str:
    """The country's name as the run's databases spell it, else its code."""
    for info in places.values():
        if info.country == code and info.country_name:
            return info.country_name
        for view in info.views:
            if view.country == code and view.country_name:
                return view.country_name
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

    def names_of(self, address: str, placed: Placement) -> list[str]:
        """The names of the places ``address`` (placed as ``placed``) is in."""
        return list(dict.fromkeys(n for p, n in zip(self.places, self.names, strict=True)
                                  if contains(p, address, placed)))

    def marks(self, address: str, placed: Placement) -> bool:
        """Whether ``address`` is in one of the places."""
        return bool(self.names_of(address, placed))

    def label_of(self, addresses: Iterable[str], place: Callable[[str], Placement]) -> str:
        """The places these addresses are in, in one phrase (``China``); ``place`` says where
        an address is."""
        names = [n for a in addresses for n in self.names_of(a, place(a))]
        return join_or(list(dict.fromkeys(names))) if names else ""
