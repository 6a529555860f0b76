"""The top of the report: the header (the run and its overall result), the files that are
missing or damaged, and the verdicts with their evidence."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed import run
from testbed.run import files
from testbed.run.vantage import route_downs

from .data import EXPECTED_FILES, RunData
from .fmt import fmt_time, text

STATUS_LABEL = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE"}


def overall(data: RunData) -> tuple[str, str]:
    """``(css status, label)`` of the whole run: FAIL if any verdict fails, INCONCLUSIVE if any
    is inconclusive (or there are none), PASS only when every verdict passes."""
    statuses = [v.status for v in data.verdicts or ()]
    if not statuses:
        return ("inconclusive", "NO VERDICTS")
    if "fail" in statuses:
        return ("fail", "FAIL")
    if any(s != "pass" for s in statuses):
        return ("inconclusive", "INCONCLUSIVE")
    return ("pass", "PASS")


def scenario_name(data: RunData) -> str:
    scenario = data.manifest.scenario
    return (scenario.name if scenario else None) or data.path.parent.name


def run_id(data: RunData) -> str:
    return data.manifest.run_id or data.path.name


@dataclass(frozen=True)
class Header:
    name: str
    run_id: str
    started: str
    provider: str
    run_status: str
    variants: str
    reanalysis_of: str
    reanalysis_databases: str
    status: str
    label: str
    summary: str
    error: str
    vantage: tuple[str, ...] = ()  # "cn: measured from CN, AS4134, via vpn cn-shanghai.conf"
    routes_down: tuple[str, ...] = ()  # "cn: route vpn … died at 05:51:02 UTC (…)"


def header(data: RunData) -> Header:
    m = data.manifest
    status, label = overall(data)
    counts = Counter(v.status for v in data.verdicts or ())
    summary = ", ".join(f"{n} {STATUS_LABEL.get(s, s).lower()}" for s, n in sorted(counts.items()))
    return Header(
        name=scenario_name(data), run_id=run_id(data),
        started=fmt_time(m.started) or "unknown", provider=m.provider or "unknown",
        run_status=m.status or "unknown", variants=", ".join(data.variants) or "none",
        reanalysis_of=m.reanalysis_of or "",
        reanalysis_databases=", ".join(Path(d).name for d in m.reanalysis_databases),
        status=status, label=label, summary=summary or f"run {m.status or 'status unknown'}",
        error=m.error or "",
        vantage=tuple(f"{v}: {x.sentence()}" + (f" ({x.details()})" if x.details() else "")
                      for v, x in m.vantage.items()),
        routes_down=tuple(f"{v}: {why}" for v, (_, why) in route_downs(data.events).items()))


@dataclass(frozen=True)
class Problem:
    file: str
    what: str
    purpose: str  # what cannot be shown because the file is missing; empty otherwise


@dataclass(frozen=True)
class Problems:
    crashed: bool  # no verdicts or no endpoints: the run is incomplete
    items: tuple[Problem, ...]


def problems(data: RunData) -> Problems:
    items = tuple(Problem(rel, what, EXPECTED_FILES.get(rel, "") if what == "missing" else "")
                  for rel, what in sorted(data.problems.items()))
    return Problems(crashed=data.verdicts is None or data.endpoints is None, items=items)


@dataclass(frozen=True)
class EvidenceItem:
    chips: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Database:
    title: str  # file and digest, on hover
    text: str


@dataclass(frozen=True)
class Verdict:
    id: str
    status: str
    label: str
    claim: str
    reason: str
    evidence: tuple[EvidenceItem, ...]
    databases: tuple[Database, ...]


@dataclass(frozen=True)
class Verdicts:
    judged: bool  # False: verdicts.json is missing or unreadable
    problem: str  # what is wrong with verdicts.json when not judged
    expectations: tuple[str, ...]  # ids of the scenario's expectations (shown when not judged)
    items: tuple[Verdict, ...]


def _evidence_item(ev: Mapping[str, Any]) -> EvidenceItem:
    """One evidence item: free-form JSON whose keys depend on its kind (typed nowhere yet)."""
    kind, strength = ev.get("kind"), ev.get("strength")
    body = ev.get("text") or ev.get("detail")
    if not body:
        rest = {k: v for k, v in ev.items() if k not in ("kind", "strength")}
        body = "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in rest.items())
    return EvidenceItem(tuple(str(x) for x in (kind, strength) if x), str(body))


def _claim(v: run.Verdict, expectation: run.Expectation | None) -> str:
    """"tom-en reaches country CN"; the places from the expectation when the verdict has none
    (``only_reaches`` names several)."""
    places = [v.place] if v.place else list(expectation.places if expectation else ())
    where = " or ".join(", ".join(f"{k} {val}" for k, val in p.items()) for p in places)
    subject = v.variant
    if v.chat:
        said = f" {v.chat.text_contains!r}" if v.chat.text_contains else ""
        subject = f"chat{said} {v.chat.sender} → {v.chat.recipient}"
    return f"{subject} {v.kind.replace('_', ' ')} {where}".strip()


def _verdict(v: run.Verdict, expectation: run.Expectation | None) -> Verdict:
    dbs = tuple(Database(f"{g.file} sha256 {text(g.sha256)}",
                         f"{text(g.database_type)} ({(g.build_date or '')[:10]})")
                for g in v.geoip)
    return Verdict(id=v.id, status=v.status,
                   label=STATUS_LABEL.get(v.status, v.status.upper() or "?"),
                   claim=_claim(v, expectation), reason=v.reason,
                   evidence=tuple(_evidence_item(x) for x in v.evidence), databases=dbs)


def verdicts(data: RunData) -> Verdicts:
    by_id = {x.id: x for x in data.manifest.expectations}
    return Verdicts(judged=data.verdicts is not None,
                    problem=data.problems.get(files.VERDICTS, "missing"),
                    expectations=tuple(by_id),
                    items=tuple(_verdict(v, by_id.get(v.id)) for v in data.verdicts or ()))
