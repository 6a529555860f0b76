"""Stage ``analyze``: the run's capture → ``analysis/`` (endpoints, places, the seed table).

Reads only the run directory (manifest, ``lab/internet.yaml``, ``capture/gateway.pcap``), so
``testbed analyze RUN`` rebuilds it on an old run.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from testbed._errors import AnalysisError, CaptureFormatError, RunFileError, ScenarioError
from testbed.analysis import (
    EndpointReport,
    Geo,
    MapEntry,
    Row,
    format_table,
    seed_table,
    write_csv,
    write_mmdb,
)
from testbed.analysis import Placement as GeoAnswer
from testbed.analysis.chatpath import ChatPath, chat_paths, messages_from_events
from testbed.analysis.classify import classify
from testbed.analysis.flowscan import FlowScan
from testbed.analysis.geo import bundled_databases
from testbed.analysis.names import NameIndex
from testbed.analysis.scan import CaptureScan
from testbed.lab.internet_map import InternetMap, load_internet
from testbed.orchestrator.rundir import RunDir
from testbed.orchestrator.scancache import Scans
from testbed.route.place import place_vantages
from testbed.run import (
    CanaryFile,
    CaptureCounts,
    CaptureDamage,
    ChatEvidence,
    ChatRecord,
    EndpointsFile,
    EvidenceFile,
    GeoipDatabase,
    Manifest,
    Placement,
    PlaceView,
    ReadStats,
    store,
)
from testbed.run import files as f


@dataclass
class Analysis:
    report: EndpointReport
    rows: list[Row]
    table: str
    places: dict[str, Placement]
    geoip: list[GeoipDatabase]
    chats: list[ChatPath]
    warnings: list[str]


def derived_run(run: RunDir, databases: list[Path]) -> RunDir:
    """A re-analysis of ``run`` with other GeoIP databases, in ``reanalysis/<id>/`` beside the
    original files, which stay untouched. Capture and lab are linked, not copied; manifest,
    events and scenario are copied, so the derived folder is a run ``pytest`` can check."""
    manifest = run.manifest()  # a damaged manifest stops here, before anything is made
    label = "+".join(db.stem for db in databases)[:60]
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = run.path / f.REANALYSIS_DIR / f"{stamp}-{label}"
    path.mkdir(parents=True, exist_ok=False)
    for name in (f.CAPTURE_DIR, f.LAB_DIR, f.SCREENSHOTS_DIR):
        if (run.path / name).exists():
            (path / name).symlink_to(Path("..") / ".." / name)
    for name in (f.EVENTS, f.SCENARIO):
        if (run.path / name).exists():
            shutil.copyfile(run.path / name, path / name)
    derived = RunDir(path)
    derived.update_manifest(**manifest.to_json(), reanalysis_of=run.run_id,
                            reanalysis_databases=[str(db) for db in databases])
    (path / f.ANALYSIS_DIR).mkdir()
    return derived


def lab_database(run: RunDir, internet: InternetMap | None = None,
                 manifest: Manifest | None = None) -> Path | None:
    """Write the lab's map (``lab/internet.yaml``, or ``internet`` when already loaded) as a
    MaxMind-format database (``manifest``: the run's, when already read)."""
    internet_file = run.file(f.INTERNET)
    if internet is None:
        if not internet_file.exists():
            return None
        internet = read_internet(internet_file, manifest)
    out = folder(run, f.GEO_DIR) / f"lab-{internet.name}.mmdb"
    started = (manifest or run.manifest()).started  # a re-analysis writes the same database
    write_mmdb(out, [MapEntry(f"{s.address}/32", s.country, internet.country_name(s.country))
                     for s in internet.servers],
               description=f"testbed lab map {internet.name} (from {internet_file.name})",
               build_epoch=int(started) if isinstance(started, int | float) else None)
    return out


def analyze_run(run: RunDir, geoip: list[Path] | None = None,
                scans: Scans | None = None) -> Analysis:
    """The run's analysis, written into it. ``scans``: the run's scans when already started
    (`testbed analyze` starts them before its imports); else they start here."""
    manifest = run.manifest()
    variants = list(manifest.guests)
    infrastructure = list(manifest.infrastructure)
    if not run.pcap.exists():
        raise AnalysisError(f"{run.pcap}: no capture in this run")
    canary = manifest.canary or ""
    with contextlib.ExitStack() as stack:
        scans = scans or stack.enter_context(Scans(run))
        # while the scans run: the lab's map and the databases, which do not depend on them
        internet_file = run.file(f.INTERNET)
        internet = read_internet(internet_file, manifest) if internet_file.exists() else None
        databases = list(geoip or [])
        if not geoip:  # the lab's map first (it decides), then the real databases we ship
            lab_db = lab_database(run, internet, manifest) if internet is not None else None
            databases = ([lab_db] if lab_db else []) + bundled_databases()
        scan = scans.capture.result()
        try:
            flows = scans.flows.result()
            names = find_names(scan, flows)
            chats = find_chat_paths(run, scan, flows, canary, infrastructure)
            hits = canary_hits(scan, flows, canary)
        except CaptureFormatError:
            raise
        except AnalysisError as e:  # a flow file that is not one, or is damaged from the start
            raise CaptureFormatError(str(e)) from e
    report = scan.endpoints
    damage = capture_damage(run, manifest, scan, flows)
    # each damage once: the capture's (every consumer saw the same), then the flow file's, then
    # a flow file or TLS log missing (no reader saw those)
    warnings = [*report.stats.warnings, *(flows.warnings if flows else ()),
                *(d.sentence() for d in damage if d.file != f.PCAP and d.after is None)]

    stands_for: dict[str, str] = {}
    lab_nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    if internet is None and (manifest.provider == "lab" or manifest.lab):
        warnings.append(f"{f.INTERNET} is missing: the lab's servers (documentation "
                        "addresses) cannot be placed")
    if internet is not None:
        stands_for = internet.stands_for()
        # every row of the map is placed by it, a lab-only site (standing for nothing) too
        lab_nets = [ipaddress.ip_network(f"{s.address}/32") for s in internet.servers]
    if not databases:
        raise AnalysisError("no GeoIP database to place endpoints with (use --geoip FILE.mmdb)")

    # every endpoint of the capture, and of the chat evidence (a flow file can show one the
    # capture lost)
    addresses = {e.address for e in report.endpoints} | {
        e.address for c in chats for e in c.evidence} | {h.address for h in hits}
    with Geo(databases) as geo:
        places = {address: place(geo, address, classify(address, lab_nets),
                                 stands_for.get(address), names.names_for(address))
                  for address in sorted(addresses)}
        provenance = [GeoipDatabase.from_json(db) for db in geo.provenance()]
        vantage = place_vantages(manifest.vantage, geo, stands_for)

    def placement(address: str) -> GeoAnswer | None:
        p = places.get(address, Placement())
        return GeoAnswer(address, p.country, p.country_name, p.database, p.network)

    rows = seed_table(report, variants, placement, lambda a: places[a].special, stands_for)
    for row in rows:
        p = places[row.address]
        row.names = list(p.names)
        row.asn = str(p.asn or "")
        row.organization = p.organization or ""
        row.views = [f"{v.country or '?'} ({v.database}"
                     + (f", for {v.address})" if v.via == "stands_for" else ")")
                     for v in p.views if v.country]
        row.disagree = " ".join(p.countries) if p.disagree else ""

    folder(run, f.ANALYSIS_DIR)
    store.write_endpoints(run.path, EndpointsFile(
        capture=report.capture,
        endpoints=tuple(report.endpoints), infrastructure=tuple(report.infrastructure),
        stats=ReadStats(**asdict(report.stats) | {"warnings": tuple(report.stats.warnings)}),
        variants=tuple(variants), places=places, geoip=tuple(provenance),
        warnings=tuple(warnings), damage=tuple(damage)))
    store.write_evidence(run.path, EvidenceFile(
        canary=manifest.canary, chats=tuple(ChatRecord.from_json(c.to_json()) for c in chats)))
    store.write_canary(run.path, CanaryFile(canary=manifest.canary, hits=tuple(hits)))
    write_csv(rows, run.file(f.ENDPOINTS_CSV), variants)
    table = format_table(rows, variants)
    run.file(f.ENDPOINTS_TXT).write_text(table + "\n")
    run.update_manifest(geoip=[g.to_json() for g in provenance],
                        **({"vantage": {v: x.to_json() for v, x in vantage.items()}}
                           if vantage else {}))
    return Analysis(report=report, rows=rows, table=table, places=places, geoip=provenance,
                    chats=chats, warnings=warnings)


def folder(run: RunDir, name: str) -> Path:
    """The run's folder ``name``, made if missing; one that cannot be is the run's damage."""
    path = run.file(name)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as e:
        raise RunFileError(path, "a file where a folder belongs") from e
    except OSError as e:
        raise RunFileError(path, f"cannot be made: {e.strerror or e}") from e
    return path


def read_internet(path: Path, manifest: Manifest | None = None) -> InternetMap:
    """The run's copy of the simulated internet's data (not checked again when it is the file
    checked as the run started: ``manifest.internet``); a file that cannot be read is the
    run's damaged file (one line naming it)."""
    checked = manifest.internet.sha256 if manifest is not None and manifest.internet else None
    try:
        return load_internet(path, checked)
    except (ScenarioError, OSError, UnicodeDecodeError, ValueError) as e:
        text = " ".join(str(e).split())
        prefix = f"{path}: "
        raise RunFileError(path, "damaged: " + (text[len(prefix):] if text.startswith(prefix)
                                                else text)) from e


def capture_damage(run: RunDir, manifest: Manifest, scan: CaptureScan,
                   flows: FlowScan | None) -> list[CaptureDamage]:
    """The capture files that end early or are missing, each from when on it is lost: the
    pcap or the flow file cut by damage (from the last record read before it), the pcap
    holding fewer packets than tcpdump said it captured (cut between two records), the flow file
    missing or empty although the TLS log shows connections the client finished with the
    gateway (intercepted: their content belongs in it), the TLS log missing
    or without a handshake although the flow file holds TLS flows (TLS the gateway could not
    open could not be ruled out)."""
    out = []
    read = scan.endpoints.stats.frames_read
    captured = (manifest.capture or CaptureCounts()).captured
    if scan.stopped or (captured and read < captured):
        rows = [*scan.endpoints.endpoints, *scan.endpoints.infrastructure]
        reason = _reason(scan.stopped, run.pcap) if scan.stopped else \
            f"ends early: it holds {read} of the {captured} packets tcpdump captured"
        out.append(CaptureDamage(f.PCAP, reason, max((e.last_seen for e in rows), default=None)))
        if not scan.stopped:  # the reader saw nothing wrong: say it once, here
            scan.endpoints.stats.warnings.append(f"{run.pcap.name}: {reason}")
    if flows is not None and flows.stopped:
        out.append(CaptureDamage(f.FLOWS, _reason(flows.stopped, run.file(f.FLOWS)),
                                 flows.read_until))
    tls, _ = store.read_tls(run.path)
    # a connection the client refused under interception holds no content: only the ones whose
    # client side finished the handshake with the gateway count (older logs name no connection:
    # every one not passed through counts)
    hellos = [t for t in tls if t.event == "clienthello" and t.passthrough is False]
    done = {t.conn for t in tls if t.event == "tls_established" and t.side == "client"}
    intercepted = sum(1 for t in hellos if t.conn is None or t.conn in done)
    if intercepted and (flows is None or not flows.flows):
        out.append(CaptureDamage(f.FLOWS, f"{'empty' if flows else 'missing'}, though {f.TLS} "
                                 f"shows {intercepted} intercepted TLS connections whose "
                                 "content it would hold"))
    if flows is not None and flows.tls_flows and not any(t.event == "clienthello" for t in tls):
        out.append(CaptureDamage(f.TLS, f"{'empty' if run.file(f.TLS).exists() else 'missing'}"
                                 f", though {f.FLOWS} holds {flows.tls_flows} TLS flows: TLS "
                                 "the gateway could not open cannot be ruled out"))
    return out


def _reason(warning: str, path: Path) -> str:
    return warning.removeprefix(f"{path.name}: ")


def place(geo: Geo, address: str, special: str | None, stands_for: str | None,
          names: list[str]) -> Placement:
    """Where one endpoint is, with provenance: the first database that places the address
    (for a lab address: the lab's map; failing that, its stand-in), and every database's
    view of the address and of the real address it stands for. Special-purpose addresses
    are classified, never placed."""
    if special:
        return Placement(special=special, stands_for=stands_for, names=tuple(names))
    views = [(p, "address") for p in geo.place_all(address) if p.known]
    if stands_for:
        views += [(p, "stands_for") for p in geo.place_all(stands_for) if p.known]
    primary = next(((p, via) for p, via in views if p.iso_code), None)
    owner = next((p for p, _via in views if p.asn or p.organization), None)
    codes = tuple(sorted({p.iso_code for p, _ in views if p.iso_code}))
    return Placement(
        stands_for=stands_for, names=tuple(names),
        country=primary[0].iso_code if primary else None,
        country_name=primary[0].country_name if primary else None,
        database=primary[0].database if primary else None,
        network=primary[0].network if primary else None, via=primary[1] if primary else None,
        asn=owner.asn if owner else None, organization=owner.organization if owner else None,
        views=tuple(PlaceView(database=p.database, via=via, address=p.address,
                              country=p.iso_code, country_name=p.country_name, city=p.city,
                              asn=p.asn, organization=p.organization, network=p.network)
                    for p, via in views),
        countries=codes, disagree=len(codes) > 1)


def find_names(scan: CaptureScan, flows: FlowScan | None) -> NameIndex:
    """Names endpoints were reached by: DNS answers and TLS SNI (pcap), HTTP Host (flows)."""
    if flows is None:
        return scan.names
    names = NameIndex()
    names.merge(scan.names)
    names.merge(flows.names)
    return names


def canary_hits(scan: CaptureScan, flows: FlowScan | None, canary: str) -> list[ChatEvidence]:
    """Every hit of the run's canary: in plaintext packets and in decrypted flows, in time
    order."""
    if not canary:
        return []
    hits = [*scan.canary_hits, *(flows.canary_hits if flows is not None else ())]
    return sorted(hits, key=lambda h: h.time)


def find_chat_paths(run: RunDir, scan: CaptureScan, flows: FlowScan | None, canary: str,
                    infrastructure: list[str]) -> list[ChatPath]:
    """Chat path evidence for every chat message of the run (see ``analysis.chatpath``)."""
    messages = messages_from_events(run.events())
    if not messages:
        return []
    hits = list(scan.canary_hits) if canary else []
    if canary and flows is not None:
        hits += flows.canary_hits
    starts = {k: list(v) for k, v in scan.bursts.items()}
    return chat_paths(messages, canary, sorted(hits, key=lambda h: h.time), starts,
                      infrastructure=infrastructure)
