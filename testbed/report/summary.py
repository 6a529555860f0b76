"""The top of the report: the header (the run and its overall result), the files that are
missing or damaged, and the verdicts with their evidence."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.run import files

from .data import EXPECTED_FILES, RunData
from .fmt import as_dict, fmt_time, text

STATUS_LABEL = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE"}


def overall(data: RunData) -> tuple[str, str]:
    """``(css status, label)`` of the whole run: FAIL if any verdict fails, INCONCLUSIVE if any
    is inconclusive (or there are none), PASS only when every verdict passes."""
    statuses = [str(v.get("status")) for v in data.verdicts or []]
    if not statuses:
        return ("inconclusive", "NO VERDICTS")
    if "fail" in statuses:
        return ("fail", "FAIL")
    if any(s != "pass" for s in statuses):
        return ("inconclusive", "INCONCLUSIVE")
    return ("pass", "PASS")


def scenario_name(data: RunData) -> str:
    return str(as_dict(data.manifest.get("scenario")).get("name") or data.path.parent.name)


def run_id(data: RunData) -> str:
    return str(data.manifest.get("run_id") or data.path.name)


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


def header(data: RunData) -> Header:
    m = data.manifest
    status, label = overall(data)
    counts = Counter(str(v.get("status")) for v in data.verdicts or [])
    summary = ", ".join(f"{n} {STATUS_LABEL.get(s, s).lower()}" for s, n in sorted(counts.items()))
    return Header(
        name=scenario_name(data), run_id=run_id(data),
        started=fmt_time(m.get("started")) or "unknown",
        provider=text(m.get("provider") or "unknown"),
        run_status=text(m.get("status") or "unknown"),
        variants=", ".join(data.variants) or "none",
        reanalysis_of=text(m.get("reanalysis_of") or ""),
        reanalysis_databases=", ".join(Path(str(d)).name
                                       for d in m.get("reanalysis_databases") or []),
        status=status, label=label,
        summary=summary or f"run {m.get('status') or 'status unknown'}",
        error=text(m.get("error") or ""))


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
    return Problems(crashed=data.verdicts is None or not data.endpoints, items=items)


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


def _evidence_item(ev: dict[str, Any]) -> EvidenceItem:
    kind, strength = ev.get("kind"), ev.get("strength")
    body = ev.get("text") or ev.get("detail")
    if not body:
        rest = {k: v for k, v in ev.items() if k not in ("kind", "strength")}
        body = "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in rest.items())
    return EvidenceItem(tuple(str(x) for x in (kind, strength) if x), str(body))


def _claim(v: dict[str, Any], expectation: dict[str, Any]) -> str:
    """"tom-en reaches country CN"; the places from the expectation when the verdict has none
    (``only_reaches`` names several)."""
    places = [as_dict(v.get("place"))] if v.get("place") else \
        [as_dict(p) for p in expectation.get("places") or []]
    where = " or ".join(", ".join(f"{k} {val}" for k, val in p.items()) for p in places)
    subject = str(v.get("variant"))
    chat = as_dict(v.get("chat"))
    if chat:
        said = f" {chat['text_contains']!r}" if chat.get("text_contains") else ""
        subject = f"chat{said} {chat.get('from')} → {chat.get('to')}"
    return f"{subject} {str(v.get('kind') or '').replace('_', ' ')} {where}".strip()


def _verdict(v: dict[str, Any], expectation: dict[str, Any]) -> Verdict:
    status = str(v.get("status"))
    dbs = tuple(Database(f"{text(g.get('file'))} sha256 {text(g.get('sha256'))}",
                         f"{text(g.get('database_type'))} "
                         f"({str(g.get('build_date') or '')[:10]})")
                for g in v.get("geoip") or [] if isinstance(g, dict))
    return Verdict(id=text(v.get("id")), status=status,
                   label=STATUS_LABEL.get(status, status.upper() or "?"),
                   claim=_claim(v, expectation),
                   reason=text(v.get("reason")),
                   evidence=tuple(_evidence_item(x) for x in v.get("evidence") or []
                                  if isinstance(x, dict)),
                   databases=dbs)


def verdicts(data: RunData) -> Verdicts:
    exps = data.manifest.get("expectations")
    exps = [x for x in exps if isinstance(x, dict)] if isinstance(exps, list) else []
    by_id = {text(x.get("id")): x for x in exps}
    return Verdicts(judged=data.verdicts is not None,
                    problem=data.problems.get(files.VERDICTS, "missing"),
                    expectations=tuple(by_id),
                    items=tuple(_verdict(v, by_id.get(text(v.get("id")), {}))
                                for v in data.verdicts or []))
