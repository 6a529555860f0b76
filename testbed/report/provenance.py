"""How the run was made: capture statistics and TLS notes, the agents' actions, and the
provenance (GeoIP databases, phase timings, scenario, tool versions, re-analyses)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from testbed.capture.outcomes import OUTCOMES, TlsOutcome, classify
from testbed.run import CaptureCounts, ReadStats, TlsRecord, files
from testbed.run.downloads import downloads_of
from testbed.run.manifest import ScenarioRef

from . import charts
from .data import RunData
from .fmt import duration, fmt_time, text


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
class Unopened:
    """A client and host whose TLS the gateway did not open, in ``testbed.capture.outcomes``'
    words."""

    client: str  # the variant when the address is a guest's
    server: str  # address:port
    sni: str
    outcome: str
    reason: str
    time: str  # the first connection's


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
    outcomes: tuple[tuple[str, int], ...]  # outcome word -> clients and hosts, those seen
    unopened: tuple[Unopened, ...]  # every client and host not intercepted
    failed: tuple[TlsEvent, ...]


def _capture_stats(cap: CaptureCounts | None) -> tuple[Stat, ...]:
    """tcpdump's counts and whether it stopped cleanly; nothing when it never did."""
    if cap is None:
        return ()
    counts = (("captured", cap.captured), ("received", cap.received), ("dropped", cap.dropped))
    return (*(Stat(name, text(n)) for name, n in counts),
            Stat("complete", "yes" if cap.complete else "no", cap.complete))


def _analysis_stats(stats: ReadStats) -> tuple[Stat, ...]:
    """How the analysis read the capture: the counts it recorded, and its warnings' count."""
    out = [Stat(name, str(n)) for name, n in stats.counts.items()]
    if stats.warnings is not None:
        out.append(Stat("warnings", str(len(stats.warnings))))
    return tuple(out)


def capture(data: RunData) -> Capture:
    cap = data.manifest.capture
    warnings = data.endpoints.warnings if data.endpoints else ()
    who = data.address_to_variant

    def event(t: TlsRecord) -> TlsEvent:
        return TlsEvent(client=who.get(text(t.client), text(t.client)), side=text(t.side),
                        server=f"{text(t.server)}:{text(t.port)}", sni=text(t.sni),
                        time=fmt_time(t.time, clock_only=True), error=text(t.error))

    def unopened(o: TlsOutcome) -> Unopened:
        return Unopened(client=who.get(o.client, o.client), server=f"{o.server}:{text(o.port)}",
                        sni=o.sni, outcome=o.outcome, reason=o.reason,
                        time=fmt_time(o.times[0] if o.times else None, clock_only=True))

    hellos = [t for t in data.tls if t.event == "clienthello"]
    decided = classify(data.tls)
    counts = Counter(o.outcome for o in decided)
    per_variant = Counter(who.get(str(t.client), str(t.client)) for t in hellos)
    return Capture(
        stats=_capture_stats(cap),
        lossy=cap is not None and (not cap.complete or bool(cap.dropped)),
        analysis=_analysis_stats(data.endpoints.stats) if data.endpoints else (),
        warnings=warnings[:50], warning_count=len(warnings),
        tls_problem=data.problems.get(files.TLS, "") if not data.tls else "",
        tls_seen=bool(data.tls), handshakes=len(hellos),
        per_variant=tuple(sorted(per_variant.items())),
        outcomes=tuple((w, counts[w]) for w in OUTCOMES if counts[w]),
        unopened=tuple(unopened(o) for o in decided if not o.opened),
        failed=tuple(event(t) for t in data.tls if t.event == "tls_failed"))


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
class DownloadRow:
    """One download a variant made: where it was sent and what it was served."""

    variant: str
    url: str
    redirects: str  # "302 → http://…" per hop, or "none"
    final_host: str
    size: str
    sha256: str
    ok: bool
    error: str


@dataclass(frozen=True)
class Actions:
    problem: str  # what is wrong with events.jsonl when there are none
    failed: int
    items: tuple[Action, ...]
    downloads: tuple[DownloadRow, ...] = ()


def download_rows(data: RunData) -> tuple[DownloadRow, ...]:
    """The downloads of the run's events (a damaged record is left out: the verdicts on it
    say why they cannot be judged)."""
    try:
        found = downloads_of(data.events)
    except ValueError:
        return ()
    return tuple(DownloadRow(
        variant=d.variant, url=d.url,
        redirects="; ".join(f"{h.status} → {h.location}" for h in d.chain[:-1]) or "none",
        final_host=text(d.final_host), size=text(d.size), sha256=text(d.sha256), ok=d.ok,
        error=text(d.error)) for d in found)


def actions(data: RunData) -> Actions:
    items = []
    for ev in sorted(data.events, key=lambda x: x.start or 0.0):
        dur = duration(ev.start, ev.end)
        items.append(Action(
            session=text(ev.session), variant=ev.variant, action=ev.action,
            start=fmt_time(ev.start, clock_only=True), took=f"{dur:.1f} s" if dur > 0 else "",
            ok=ev.outcome in (None, "ok"), outcome=text(ev.outcome), error=text(ev.error)))
    return Actions(problem=data.problems.get(files.EVENTS, "empty"),
                   failed=sum(not a.ok for a in items), items=tuple(items),
                   downloads=download_rows(data))


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
    geo = m.geoip or (data.endpoints.geoip if data.endpoints else ())
    dbs = tuple(Database(file=g.file, name=Path(g.file or "?").name,
                         type=text(g.database_type), build_date=text(g.build_date),
                         sha256=text(g.sha256), attribution=text(g.attribution))
                for g in geo)
    timings, spans = [], []
    for name, p in m.phases.items():
        status = p.status or "?"
        timings.append(PhaseTiming(name, status,
                                   f"{p.seconds:.2f} s" if p.seconds is not None else "",
                                   p.error or ""))
        if p.start is not None and p.end is not None:
            spans.append((name, p.start, p.end, status))
    scen = m.scenario or ScenarioRef()
    return Provenance(
        databases=dbs, phases=tuple(timings), timeline=charts.phase_timeline(spans),
        scenario_name=text(scen.name), scenario_file=text(scen.path),
        scenario_sha256=text(scen.sha256), canary=text(m.canary),
        guests=tuple(m.guests.items()), tools=tuple(m.tools.items()),
        reanalyses=tuple(p.name for p in data.reanalyses))
