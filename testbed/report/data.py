"""Reading a run directory for the report, defensively.

A crashed run may lack any file, and any file may be half-written. ``load_run`` never raises
for a missing or damaged file: it records what it could not read in ``RunData.problems`` and
gives empty defaults, so the report can say what is missing instead of failing.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The files a complete run has, with what each one tells the reader (for "missing" notes).
EXPECTED_FILES: dict[str, str] = {
    "manifest.json": "scenario, tool versions, phases, capture statistics, GeoIP provenance",
    "events.jsonl": "the actions the agents performed",
    "analysis/endpoints.json": "the endpoints each variant contacted and where they are",
    "analysis/evidence.json": "the chat paths (canary hits, timing evidence)",
    "verdicts.json": "the verdicts",
    "capture/tls.jsonl": "TLS handshakes, failures and pinned servers",
}


@dataclass
class RunData:
    """Everything the report shows, read from one run directory (empty when absent)."""

    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    endpoints: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    verdicts: list[dict[str, Any]] | None = None  # None: verdicts.json missing or unreadable
    tls: list[dict[str, Any]] = field(default_factory=list)
    screenshots: dict[str, dict[str, Path]] = field(default_factory=dict)  # variant→phase→png
    #: file (relative to the run) → what is wrong with it ("missing", "unreadable: ...")
    problems: dict[str, str] = field(default_factory=dict)
    reanalyses: list[Path] = field(default_factory=list)

    @property
    def variants(self) -> list[str]:
        """Variants in a stable order: the analysis's, then the manifest's guests, then any
        seen in events or screenshots."""
        out: list[str] = []
        sources: list[Any] = [self.endpoints.get("variants"), self.manifest.get("guests"),
                              [e.get("variant") for e in self.events], list(self.screenshots)]
        for src in sources:
            for v in src or []:
                if isinstance(v, str) and v and v not in out:
                    out.append(v)
        return out

    @property
    def places(self) -> dict[str, dict[str, Any]]:
        p = self.endpoints.get("places")
        return p if isinstance(p, dict) else {}

    @property
    def endpoint_rows(self) -> list[dict[str, Any]]:
        rows = self.endpoints.get("endpoints")
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    @property
    def address_to_variant(self) -> dict[str, str]:
        guests = self.manifest.get("guests")
        if not isinstance(guests, dict):
            return {}
        return {str(addr): str(v) for v, addr in guests.items()}


def _read_json(run: Path, rel: str, problems: dict[str, str]) -> Any:
    p = run / rel
    if not p.is_file():
        problems[rel] = "missing"
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        problems[rel] = f"unreadable: {e}"
        return None


def _read_jsonl(run: Path, rel: str, problems: dict[str, str]) -> list[dict[str, Any]]:
    p = run / rel
    if not p.is_file():
        problems[rel] = "missing"
        return []
    out: list[dict[str, Any]] = []
    bad = 0
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        problems[rel] = f"unreadable: {e}"
        return []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(rec, dict):
            out.append(rec)
        else:
            bad += 1
    if bad:
        problems[rel] = f"{bad} damaged line(s) skipped"
    return out


def _dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _screenshots(run: Path) -> dict[str, dict[str, Path]]:
    root = run / "screenshots"
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
    data.manifest = _dict(_read_json(run, "manifest.json", problems))
    data.events = _read_jsonl(run, "events.jsonl", problems)
    data.endpoints = _dict(_read_json(run, "analysis/endpoints.json", problems))
    data.evidence = _dict(_read_json(run, "analysis/evidence.json", problems))
    raw = _read_json(run, "verdicts.json", problems)
    if isinstance(raw, dict) and isinstance(raw.get("verdicts"), list):
        data.verdicts = [v for v in raw["verdicts"] if isinstance(v, dict)]
    elif raw is not None:
        problems["verdicts.json"] = "unreadable: no 'verdicts' list"
    data.tls = _read_jsonl(run, "capture/tls.jsonl", problems)
    data.screenshots = _screenshots(run)
    if not data.screenshots:
        problems["screenshots/"] = "missing" if not (run / "screenshots").is_dir() else "empty"
    re_dir = run / "reanalysis"
    if re_dir.is_dir():
        data.reanalyses = sorted(p for p in re_dir.iterdir() if p.is_dir())
    return data


def address_key(address: str) -> tuple[int, int, str]:
    """Sort key: IPv4 before IPv6, numerically; anything unparsable last."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return (9, 0, address)
    return (ip.version, int(ip), address)
