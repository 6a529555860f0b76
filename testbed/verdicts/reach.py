"""Verdicts on where a variant went: ``reaches``, ``never_reaches`` and ``only_reaches``.

A positive claim passes on evidence: a flow of the variant to an endpoint in the place. A
negative claim (never, only) passes only when the capture is complete and undamaged, the
variant produced traffic, its actions were recorded and all succeeded, every endpoint it
reached was placed, and no database puts one of them in the place the primary database keeps
it out of. Without evidence, the same doubts make a positive claim inconclusive rather than
failed (``facts.settle``).
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

from testbed.run import FAIL, INCONCLUSIVE, EndpointRow, Expectation, Placement, Verdict
from testbed.verdicts.facts import RunFacts, settle
from testbed.verdicts.places import contains_any, describe


def _short(database: str | None) -> str:
    return (database or "no database").replace(".mmdb", "")


def _agreeing(info: Placement, code: str | None) -> list[str]:
    """The databases that put the address (or the real address it stands for) in ``code``."""
    dbs = [_short(v.database) for v in info.views if v.country == code]
    return list(dict.fromkeys(dbs)) or [_short(info.database)]


def _evidence(e: EndpointRow, info: Placement, facts: RunFacts) -> dict[str, Any]:
    when = datetime.datetime.fromtimestamp(e.first_seen, datetime.UTC).strftime("%H:%M:%S")
    who = [f"stands for {info.stands_for}"] if info.stands_for else []
    who += info.names[:1]
    dbs = _agreeing(info, info.country)
    per = " and ".join([", ".join(dbs[:-1]), dbs[-1]] if len(dbs) > 1 else dbs)
    text = (f"{e.address} ({'; '.join(who) or 'no name'}): "
            f"{info.country_name or '?'} per {per}; {e.proto}/{e.port} "
            f"{facts.action_at(e.variant, e.first_seen)}, first at {when} UTC")
    return {"kind": "flow", "strength": "observed", "address": e.address,
            "proto": e.proto, "port": e.port, "first_seen": e.first_seen,
            "bytes": e.bytes_out + e.bytes_in, "country": info.country,
            "database": info.database, "databases": dbs,
            "stands_for": info.stands_for, "names": list(info.names),
            "text": text}


def _disputed(mine: list[EndpointRow], facts: RunFacts, code: str) -> list[str]:
    """Endpoints the primary database places elsewhere but another database puts in ``code``."""
    out = []
    for address in sorted({e.address for e in mine}):
        info = facts.place(address)
        if info.country == code or info.special:
            continue
        for v in info.views:
            if v.country == code:
                out.append(f"{_short(v.database)} places {v.address}"
                           + (f" (for {address})" if v.address != address else "")
                           + f" in {code}, {_short(info.database)} in "
                           f"{info.country or 'no country'}")
                break
    return out


def _reached(variant: str, where: str, hits: list[dict[str, Any]]) -> str:
    """"tom-en reached CN: <the first flow in full>; also A, B, C and 11 more"."""
    text = f"{variant} reached {where}: {hits[0]['text']}"
    others = [h["address"] for h in hits[1:]]
    if others:
        text += "; also " + ", ".join(others[:3])
        text += f" and {len(others) - 3} more" if len(others) > 3 else ""
    return text


def evaluate_reach(expectation: Expectation, facts: RunFacts) -> Verdict:
    variant, kind = expectation.variant, expectation.kind
    places = expectation.all_places
    where = " or ".join(describe(p) for p in places)
    mine = [e for e in facts.endpoints if e.variant == variant]

    def inside(e: EndpointRow) -> bool:
        return contains_any(places, e.address, facts.place(e.address))

    if kind == "only_reaches":  # the claim fails on what lies outside the places
        hits = [_evidence(e, facts.place(e.address), facts) for e in mine
                if facts.place(e.address).country and not inside(e)]
    else:
        hits = [_evidence(e, facts.place(e.address), facts) for e in mine if inside(e)]
    first: dict[str, dict[str, Any]] = {}
    for h in hits:
        first.setdefault(h["address"], h)
    hits = list(first.values())
    v = Verdict(id=expectation.id, variant=variant, kind=kind, place=expectation.place,
                status=FAIL, reason="", evidence=tuple(hits), geoip=facts.geoip)
    doubts = [*facts.silence(variant), *facts.doubts(variant),
              *facts.unplaced(e.address for e in mine)]
    if kind == "never_reaches" and "country" in expectation.place:
        disputed = _disputed(mine, facts, expectation.place["country"])
        if disputed:
            doubts.append("the databases disagree: " + "; ".join(disputed[:3]))
    positive = kind == "reaches"
    status = settle(positive, bool(hits), doubts)

    if hits:
        if kind == "only_reaches":
            also = ", ".join(h["address"] for h in hits[1:4])
            return replace(v, status=status, reason=f"{variant} reached places outside "
                           f"{where}: " + hits[0]["text"]
                           + (f"; also {also}" if len(hits) > 1 else ""))
        return replace(v, status=status, reason=_reached(variant, where, hits))
    if status == INCONCLUSIVE:
        lead = (f"no evidence that {variant} reached {where}, and the run cannot rule it out: "
                if positive else "")
        return replace(v, status=status, reason=lead + "; ".join(doubts))
    addresses = {e.address for e in mine}
    if positive:
        return replace(v, status=status, reason=f"{variant} never reached {where}: "
                       f"{len(addresses)} endpoints contacted, none placed in {where}")
    countries = sorted({c for e in mine if (c := facts.place(e.address).country)})
    return replace(v, status=status, reason=(
        f"{variant} contacted {len(addresses)} endpoints, "
        + (f"all in {where}" if kind == "only_reaches" else f"none in {where}")
        + f" (countries: {', '.join(countries) or 'none'})"),
        evidence=({"kind": "absence", "strength": "complete-capture",
                   "endpoints": len(addresses), "countries": countries,
                   "packets_captured": facts.capture.captured,
                   "dropped": facts.capture.dropped},))
