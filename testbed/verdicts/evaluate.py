"""Expectations → verdicts, each with its reason and evidence. Never a silent pass.

A positive claim (``reaches``) passes on evidence: at least one endpoint of the variant placed
in the place. A negative claim (``never_reaches``) passes only when the capture is complete
(tcpdump stopped cleanly, nothing dropped), the variant produced traffic, every action of the
variant succeeded and every global endpoint it reached was placed somewhere else. Anything less
is ``inconclusive``, with the reason.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


@dataclass
class Verdict:
    id: str
    variant: str
    kind: str
    place: dict[str, str]
    status: str
    reason: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    geoip: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunFacts:
    """What verdicts rest on, read from a run directory."""

    endpoints: list[dict[str, Any]]
    places: dict[str, dict[str, Any]]
    capture: dict[str, Any]
    failed_actions: dict[str, list[str]]
    geoip: list[dict[str, Any]]

    @classmethod
    def load(cls, run: Path) -> RunFacts:
        manifest = json.loads((run / "manifest.json").read_text())
        analysis_file = run / "analysis" / "endpoints.json"
        analysis = json.loads(analysis_file.read_text()) if analysis_file.exists() else {}
        failed: dict[str, list[str]] = {}
        events = run / "events.jsonl"
        for line in events.read_text().splitlines() if events.exists() else []:
            if not line.strip():
                continue
            e = json.loads(line)
            if e.get("outcome") != "ok":
                failed.setdefault(e["variant"], []).append(
                    f"{e['action']} {e.get('outcome')}: {e.get('error')}")
        return cls(endpoints=list(analysis.get("endpoints", [])),
                   places=dict(analysis.get("places", {})),
                   capture=dict(manifest.get("capture", {})), failed_actions=failed,
                   geoip=list(analysis.get("geoip", [])))


def _describe_place(place: dict[str, str]) -> str:
    return ", ".join(f"{v}" for v in place.values())


def _matches(info: dict[str, Any], place: dict[str, str]) -> bool:
    if info.get("special"):
        return False
    return all(info.get(k) == v for k, v in place.items() if k == "country")


def _evidence(e: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    when = datetime.datetime.fromtimestamp(e["first_seen"], datetime.UTC).strftime("%H:%M:%S")
    stands = f"stands for {info['stands_for']}, " if info.get("stands_for") else ""
    text = (f"{e['address']} ({stands}{info.get('country_name') or '?'}, "
            f"{info.get('database') or 'no database'}) {e['proto']}/{e['port']}, "
            f"{e['packets_out'] + e['packets_in']} packets, first at {when} UTC")
    return {"kind": "flow", "strength": "observed", "address": e["address"],
            "proto": e["proto"], "port": e["port"], "first_seen": e["first_seen"],
            "bytes": e["bytes_out"] + e["bytes_in"], "country": info.get("country"),
            "database": info.get("database"), "stands_for": info.get("stands_for"),
            "text": text}


def evaluate(expectation: dict[str, Any], facts: RunFacts) -> Verdict:
    variant, kind = expectation["variant"], expectation["kind"]
    place = dict(expectation["place"])
    where = _describe_place(place)
    mine = [e for e in facts.endpoints if e["variant"] == variant]
    hits = [_evidence(e, facts.places.get(e["address"], {})) for e in mine
            if _matches(facts.places.get(e["address"], {}), place)]
    first: dict[str, dict[str, Any]] = {}
    for h in hits:
        first.setdefault(h["address"], h)
    hits = list(first.values())
    v = Verdict(id=expectation["id"], variant=variant, kind=kind, place=place, status=FAIL,
                reason="", evidence=hits, geoip=facts.geoip)

    doubts = []
    if not mine:
        doubts.append(f"no traffic of {variant} was captured")
    if not facts.capture.get("complete"):
        doubts.append("the capture is incomplete (tcpdump did not stop cleanly)")
    elif facts.capture.get("dropped"):
        doubts.append(f"the capture dropped {facts.capture['dropped']} packets")
    if facts.failed_actions.get(variant):
        doubts.append(f"{variant}'s actions did not all succeed: "
                      + "; ".join(facts.failed_actions[variant]))

    if kind == "reaches":
        if hits:
            v.status = PASS
            v.reason = f"{variant} reached {where}: " + "; ".join(h["text"] for h in hits[:3])
            if len(hits) > 3:
                v.reason += f"; and {len(hits) - 3} more"
        elif doubts:
            v.status, v.reason = INCONCLUSIVE, f"no evidence that {variant} reached {where}, " \
                f"and the run cannot rule it out: " + "; ".join(doubts)
        else:
            v.reason = f"{variant} never reached {where}: " \
                f"{len({e['address'] for e in mine})} endpoints contacted, none placed in {where}"
        return v

    # never_reaches
    if hits:
        v.reason = f"{variant} reached {where}: " + "; ".join(h["text"] for h in hits[:3])
        if len(hits) > 3:
            v.reason += f"; and {len(hits) - 3} more"
        return v
    unplaced = sorted({e["address"] for e in mine
                       if not facts.places.get(e["address"], {}).get("special")
                       and not facts.places.get(e["address"], {}).get("country")})
    if unplaced:
        doubts.append(f"{len(unplaced)} endpoints could not be placed: {', '.join(unplaced[:5])}")
    if doubts:
        v.status, v.reason = INCONCLUSIVE, "; ".join(doubts)
        return v
    countries = sorted({facts.places[e["address"]]["country"] for e in mine
                        if facts.places.get(e["address"], {}).get("country")})
    addresses = {e["address"] for e in mine}
    v.status = PASS
    v.reason = (f"{variant} contacted {len(addresses)} endpoints, none in {where} "
                f"(countries: {', '.join(countries) or 'none'})")
    v.evidence = [{"kind": "absence", "strength": "complete-capture",
                   "endpoints": len(addresses), "countries": countries,
                   "packets_captured": facts.capture.get("captured"),
                   "dropped": facts.capture.get("dropped")}]
    return v
