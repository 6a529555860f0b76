"""Reading a run directory for the report, defensively, through ``testbed.run``.

A crashed run may lack any file, and any file may be half-written. ``load_run`` never raises
for a missing or damaged file: it records what it could not read in ``RunData.problems`` (the
file's ``RunFileError`` reason) and leaves that record empty (``None`` for a file whose absence
the page shows, an empty manifest or list otherwise), so the report can say what is missing
instead of failing. The section builders read the typed records; nothing here is a raw dict.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from testbed._errors import RunFileError
from testbed.run import (
    EndpointRow,
    EndpointsFile,
    Event,
    EvidenceFile,
    Manifest,
    Placement,
    TlsRecord,
    Verdict,
    store,
)
from testbed.run import files as f
from testbed.run.places import NOWHERE

T = TypeVar("T")

#: The files a complete run has, with what each one tells the reader (for "missing" notes).
EXPECTED_FILES: dict[str, str] = {
    f.MANIFEST: "scenario, tool versions, phases, capture statistics, GeoIP provenance",
    f.EVENTS: "the actions the agents performed",
    f.ENDPOINTS: "the endpoints each variant contacted and where they are",
    f.EVIDENCE: "the chat paths (canary hits, timing evidence)",
    f.VERDICTS: "the verdicts",
    f.TLS: "TLS handshakes, failures and outcomes",
}


@dataclass(frozen=True)
class RunData:
    """Everything the report shows, read from one run directory (empty when absent)."""

    path: Path
    manifest: Manifest = field(default_factory=Manifest)
    events: tuple[Event, ...] = ()
    endpoints: EndpointsFile | None = None  # None: missing or unreadable
    evidence: EvidenceFile | None = None  # None: missing or unreadable
    verdicts: tuple[Verdict, ...] | None = None  # None: missing or unreadable
    tls: tuple[TlsRecord, ...] = ()
    screenshots: dict[str, dict[str, Path]] = field(default_factory=dict)  # variant→phase→png
    #: file (relative to the run) → what is wrong with it ("missing", "unreadable: ...")
    problems: dict[str, str] = field(default_factory=dict)
    reanalyses: tuple[Path, ...] = ()

    @property
    def variants(self) -> list[str]:
        """Variants in a stable order: the analysis's, then the manifest's guests, then any
        seen in events or screenshots."""
        out: list[str] = []
        sources = [self.endpoints.variants if self.endpoints else (), self.manifest.guests,
                   [e.variant for e in self.events], self.screenshots]
        for src in sources:
            for v in src:
                if v and v not in out:
                    out.append(v)
        return out

    @property
    def places(self) -> dict[str, Placement]:
        """Address → where the analysis placed it (empty without an analysis)."""
        return self.endpoints.places if self.endpoints else {}

    def place(self, address: str) -> Placement:
        """Where ``address`` is (an empty placement when the analysis did not place it)."""
        return self.endpoints.place(address) if self.endpoints else NOWHERE

    @property
    def endpoint_rows(self) -> tuple[EndpointRow, ...]:
        return self.endpoints.endpoints if self.endpoints else ()

    @property
    def address_to_variant(self) -> dict[str, str]:
        return self.manifest.address_to_variant


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
    manifest = _read(f.MANIFEST, lambda: store.read_manifest(run), problems) or Manifest()
    events = _read_lines(f.EVENTS, lambda skip: store.read_events(run, skip), run, problems)
    endpoints = _read(f.ENDPOINTS, lambda: store.read_endpoints(run), problems)
    evidence = _read(f.EVIDENCE, lambda: store.read_evidence(run), problems)
    verdicts = _read(f.VERDICTS, lambda: store.read_verdicts(run), problems)
    tls = _read_lines(f.TLS, lambda skip: store.read_tls(run, skip), run, problems)
    screenshots = _screenshots(run)
    if not screenshots:
        problems[f"{f.SCREENSHOTS_DIR}/"] = "missing" \
            if not (run / f.SCREENSHOTS_DIR).is_dir() else "empty"
    re_dir = run / f.REANALYSIS_DIR
    reanalyses = sorted(p for p in re_dir.iterdir() if p.is_dir()) if re_dir.is_dir() else []
    return RunData(path=run, manifest=manifest, events=tuple(events), endpoints=endpoints,
                   evidence=evidence, verdicts=None if verdicts is None else tuple(verdicts),
                   tls=tuple(tls), screenshots=screenshots, problems=problems,
                   reanalyses=tuple(reanalyses))


def address_key(address: str) -> tuple[int, int, str]:
    """Sort key: IPv4 before IPv6, numerically; anything unparsable last."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return (9, 0, address)
    return (ip.version, int(ip), address)
