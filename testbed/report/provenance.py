"""How the run was made: capture statistics and TLS notes, the agents' actions, and the
provenance (GeoIP databases, phase timings, scenario, tool versions, re-analyses)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from testbed.run import files

from . import charts
from .data import RunData
from .fmt import as_dict, duration, fmt_time, num, text


@dataclass(frozen=True)
class Stat:
    name: str
    value: str
    good: bool | None = None  # True/False for a yes/no value, else None


@dataclass(frozen=True)
class TlsEvent:
    client: str  # the variant when the address is a guest's
    side: str
    server: str  # address:port
    sni: str
    time: str
    error: str


@dataclass(frozen=True)
class Capture:
    stats: tuple[Stat, ...]  # empty: the capture never stopped cleanly
    lossy: bool
    analysis: tuple[Stat, ...]
    warnings: tuple[str, ...]  # the first 50
    warning_count: int
    tls_problem: str  # what is wrong with capture/tls.jsonl when nothing could be read
    tls_seen: bool
    handshakes: int
    per_variant: tuple[tuple[str, int], ...]
    pinned: tuple[TlsEvent, ...]
    failed: tuple[TlsEvent, ...]


def capture(data: RunData) -> Capture:
    cap = as_dict(data.manifest.get("capture"))
    stats = tuple(Stat(str(k), {True: "yes", False: "no"}[v] if isinstance(v, bool) else text(v),
                       v if isinstance(v, bool) else None) for k, v in cap.items())
    analysis = as_dict(data.endpoints.get("stats"))
    warnings = data.endpoints.get("warnings")
    warnings = warnings if isinstance(warnings, list) else []
    who = data.address_to_variant

    def event(t: dict[str, object]) -> TlsEvent:
        return TlsEvent(client=who.get(str(t.get("client")), text(t.get("client"))),
                        side=text(t.get("side")), server=f"{text(t.get('server'))}:"
                        f"{text(t.get('port'))}", sni=text(t.get("sni")),
                        time=fmt_time(t.get("time"), clock_only=True), error=text(t.get("error")))

    hellos = [t for t in data.tls if t.get("event") == "clienthello"]
    per_variant = Counter(who.get(str(t.get("client")), str(t.get("client"))) for t in hellos)
    return Capture(
        stats=stats, lossy=bool(cap) and (cap.get("complete") is not True
                                          or bool(cap.get("dropped"))),
        analysis=tuple(Stat(str(k), text(len(v) if isinstance(v, list) else v))
                       for k, v in analysis.items()),
        warnings=tuple(map(text, warnings[:50])), warning_count=len(warnings),
        tls_problem=data.problems.get(files.TLS, "") if not data.tls else "",
        tls_seen=bool(data.tls), handshakes=len(hellos),
        per_variant=tuple(sorted(per_variant.items())),
        pinned=tuple(event(t) for t in data.tls if t.get("event") == "pinned"),
        failed=tuple(event(t) for t in data.tls if t.get("event") == "tls_failed"))


@dataclass(frozen=True)
class Action:
    session: str
    variant: str
    action: str
    start: str
    took: str
    ok: bool
    outcome: str
    error: str


@dataclass(frozen=True)
class Actions:
    problem: str  # what is wrong with events.jsonl when there are none
    failed: int
    items: tuple[Action, ...]


def actions(data: RunData) -> Actions:
    items = []
    for ev in sorted(data.events, key=lambda x: num(x.get("start")) or 0.0):
        dur = duration(ev.get("start"), ev.get("end"))
        items.append(Action(
            session=text(ev.get("session")), variant=text(ev.get("variant")),
            action=text(ev.get("action")), start=fmt_time(ev.get("start"), clock_only=True),
            took=f"{dur:.1f} s" if dur > 0 else "", ok=ev.get("outcome") in (None, "ok"),
            outcome=text(ev.get("outcome")), error=text(ev.get("error"))))
    return Actions(problem=data.problems.get(files.EVENTS, "empty"),
                   failed=sum(not a.ok for a in items), items=tuple(items))


@dataclass(frozen=True)
class Database:
    file: str
    name: str
    type: str
    build_date: str
    sha256: str
    attribution: str


@dataclass(frozen=True)
class PhaseTiming:
    name: str
    status: str
    took: str
    error: str


@dataclass(frozen=True)
class Provenance:
    databases: tuple[Database, ...]
    phases: tuple[PhaseTiming, ...]
    timeline: charts.Chart | None
    scenario_name: str
    scenario_file: str
    scenario_sha256: str
    canary: str
    guests: tuple[tuple[str, str], ...]
    tools: tuple[tuple[str, str], ...]
    reanalyses: tuple[str, ...]


def provenance(data: RunData) -> Provenance:
    m = data.manifest
    geo = m.get("geoip") or data.endpoints.get("geoip") or []
    dbs = tuple(Database(file=text(g.get("file")), name=Path(str(g.get("file") or "?")).name,
                         type=text(g.get("database_type")), build_date=text(g.get("build_date")),
                         sha256=text(g.get("sha256")), attribution=text(g.get("attribution")))
                for g in (geo if isinstance(geo, list) else []) if isinstance(g, dict))
    timings, spans = [], []
    for name, p in as_dict(m.get("phases")).items():
        if not isinstance(p, dict):
            continue
        status = str(p.get("status") or "?")
        seconds = num(p.get("seconds"))
        timings.append(PhaseTiming(str(name), status,
                                   f"{seconds:.2f} s" if seconds is not None else "",
                                   text(p.get("error") or "")))
        start, end = num(p.get("start")), num(p.get("end"))
        if start is not None and end is not None:
            spans.append((str(name), start, end, status))
    scen = as_dict(m.get("scenario"))
    return Provenance(
        databases=dbs, phases=tuple(timings), timeline=charts.phase_timeline(spans),
        scenario_name=text(scen.get("name")), scenario_file=text(scen.get("path")),
        scenario_sha256=text(scen.get("sha256")),
        canary=text(m.get("canary")),
        guests=tuple((str(v), text(a)) for v, a in as_dict(m.get("guests")).items()),
        tools=tuple((str(k), text(v)) for k, v in as_dict(m.get("tools")).items()),
        reanalyses=tuple(p.name for p in data.reanalyses))
