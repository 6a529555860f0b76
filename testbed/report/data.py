"""Reading a run directory for the report, defensively, through ``testbed.run``.

A crashed run may lack any file, and any file may be half-written. ``load_run`` never raises
for a missing or damaged file: it records what it could not read in ``RunData.problems`` (the
file's ``RunFileError`` reason) and gives empty defaults, so the report can say what is
missing instead of failing.

The typed records are ``RunData.run_manifest``, ``run_events``, ``run_endpoints``,
``run_evidence``, ``run_verdicts`` and ``run_tls``. ``manifest``, ``events``, ``endpoints``,
``evidence``, ``verdicts`` and ``tls`` are the same records in their JSON form
(``to_json()``): a thin adapter for ``render.py``, which still indexes dicts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from testbed._errors import RunFileError
from testbed.run import EndpointsFile, Event, EvidenceFile, Manifest, TlsRecord, Verdict, store
from testbed.run import files as f

T = TypeVar("T")

#: The files a complete run has, with what each one tells the reader (for "missing" notes).
EXPECTED_FILES: dict[str, str] = {
    f.MANIFEST: "scenario, tool versions, phases, capture statistics, GeoIP provenance",
    f.EVENTS: "the actions the agents performed",
    f.ENDPOINTS: "the endpoints each variant contacted and where they are",
    f.EVIDENCE: "the chat paths (canary hits, timing evidence)",
    f.VERDICTS: "the verdicts",
    f.TLS: "TLS handshakes, failures and pinned servers",
}


@dataclass
class RunData:
    """Everything the report shows, read from one run directory (empty when absent)."""

    path: Path
    run_manifest: Manifest = field(default_factory=Manifest)
    run_events: list[Event] = field(default_factory=list)
    run_endpoints: EndpointsFile | None = None
    run_evidence: EvidenceFile | None = None
    run_verdicts: list[Verdict] | None = None  # None: verdicts.json missing or unreadable
    run_tls: list[TlsRecord] = field(default_factory=list)
    screenshots: dict[str, dict[str, Path]] = field(default_factory=dict)  # variant→phase→png
    #: file (relative to the run) → what is wrong with it ("missing", "unreadable: ...")
    problems: dict[str, str] = field(default_factory=dict)
    reanalyses: list[Path] = field(default_factory=list)
    # the JSON form of the records, for render.py (see the module's docstring)
    manifest: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    endpoints: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    verdicts: list[dict[str, Any]] | None = None
    tls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def variants(self) -> list[str]:
        """Variants in a stable order: the analysis's, then the manifest's guests, then any
        seen in events or screenshots."""
        out: list[str] = []
        sources = [self.run_endpoints.variants if self.run_endpoints else (),
                   self.run_manifest.guests, [e.variant for e in self.run_events],
                   self.screenshots]
        for src in sources:
            for v in src:
                if v and v not in out:
                    out.append(v)
        return out

    @property
    def places(self) -> dict[str, dict[str, Any]]:
        places = self.run_endpoints.places if self.run_endpoints else {}
        return {a: p.to_json() for a, p in places.items()}

    @property
    def endpoint_rows(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.run_endpoints.endpoints] if self.run_endpoints else []

    @property
    def address_to_variant(self) -> dict[str, str]:
        return self.run_manifest.address_to_variant


def _read(rel: str, read: Callable[[], T | None], problems: dict[str, str]) -> T | None:
    """``read()``; None, with the problem noted, when the file is missing or damaged."""
    try:
        value = read()
    except RunFileError as e:
        problems[rel] = e.reason
        return None
    if value is None:
        problems[rel] = "missing"
    return value


def _read_lines(rel: str, read: Callable[[bool], tuple[list[T], int]], run: Path,
                problems: dict[str, str]) -> list[T]:
    if not (run / rel).is_file():
        problems[rel] = "missing"
        return []
    try:
        records, skipped = read(True)
    except RunFileError as e:
        problems[rel] = e.reason
        return []
    if skipped:
        problems[rel] = f"{skipped} damaged line(s) skipped"
    return records


def _screenshots(run: Path) -> dict[str, dict[str, Path]]:
    root = run / f.SCREENSHOTS_DIR
    out: dict[str, dict[str, Path]] = {}
    if not root.is_dir():
        return out
    for vdir in sorted(p for p in root.iterdir() if p.is_dir()):
        shots = {p.stem: p for p in sorted(vdir.glob("*.png")) if p.is_file()}
        if shots:
            out[vdir.name] = shots
    return out


def load_run(run: Path) -> RunData:
    """Read every file of ``run`` the report uses; never raises for missing or bad files."""
    problems: dict[str, str] = {}
    data = RunData(path=run, problems=problems)
    data.run_manifest = _read(f.MANIFEST, lambda: store.read_manifest(run), problems) \
        or Manifest()
    data.run_events = _read_lines(f.EVENTS, lambda skip: store.read_events(run, skip), run,
                                  problems)
    data.run_endpoints = _read(f.ENDPOINTS, lambda: store.read_endpoints(run), problems)
    data.run_evidence = _read(f.EVIDENCE, lambda: store.read_evidence(run), problems)
    data.run_verdicts = _read(f.VERDICTS, lambda: store.read_verdicts(run), problems)
    data.run_tls = _read_lines(f.TLS, lambda skip: store.read_tls(run, skip), run, problems)
    data.screenshots = _screenshots(run)
    if not data.screenshots:
        problems[f"{f.SCREENSHOTS_DIR}/"] = "missing" \
            if not (run / f.SCREENSHOTS_DIR).is_dir() else "empty"
    re_dir = run / f.REANALYSIS_DIR
    if re_dir.is_dir():
        data.reanalyses = sorted(p for p in re_dir.iterdir() if p.is_dir())
    _json_views(data)
    return data


def _json_views(data: RunData) -> None:
    """Fill the JSON form of the records that render.py reads."""
    data.manifest = data.run_manifest.to_json()
    data.events = [e.to_json() for e in data.run_events]
    data.endpoints = data.run_endpoints.to_json() if data.run_endpoints else {}
    data.evidence = data.run_evidence.to_json() if data.run_evidence else {}
    data.verdicts = None if data.run_verdicts is None else [
        v.to_json() for v in data.run_verdicts]
    data.tls = [t.to_json() for t in data.run_tls]


def address_key(address: str) -> tuple[int, int, str]:
    """Sort key: IPv4 before IPv6, numerically; anything unparsable last."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return (9, 0, address)
    return (ip.version, int(ip), address)
