"""One run's directory: ``results/<scenario>/<run-id>/``. Never overwritten; every stage
writes its own files, so a crashed run stays readable and any stage can be re-run alone.

    manifest.json     scenario + hash, tool versions, phases, capture stats, GeoIP provenance
    scenario.yaml     the scenario as it was run;  lab/internet.yaml  the simulated internet
    events.jsonl      every action: guest, start, end, outcome
    capture/          gateway.pcap, flows.mitm, tcpdump.log, mitmdump.log
    screenshots/<variant>/<phase>.png
    analysis/         endpoints.json, endpoints.csv, geo/ (the lab's map as an mmdb)
    verdicts.json     junit.xml
"""

from __future__ import annotations

import datetime
import json
import secrets
import threading
from pathlib import Path
from typing import Any

from testbed._errors import TestbedError


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def create(cls, results: Path, scenario: str) -> RunDir:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = results / scenario / f"{stamp}-{secrets.token_hex(2)}"
        path.mkdir(parents=True, exist_ok=False)
        for sub in ("capture", "screenshots", "analysis", "lab"):
            (path / sub).mkdir()
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> RunDir:
        if not (path / "manifest.json").is_file():
            raise TestbedError(f"{path}: not a run directory (no manifest.json)")
        return cls(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def pcap(self) -> Path:
        return self.path / "capture" / "gateway.pcap"

    def manifest(self) -> dict[str, Any]:
        p = self.path / "manifest.json"
        return dict(json.loads(p.read_text())) if p.exists() else {}

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        with self._lock:
            data = self.manifest()
            data.update(fields)
            tmp = self.path / "manifest.json.tmp"
            tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            tmp.replace(self.path / "manifest.json")
            return data

    def event(self, **record: Any) -> None:
        with self._lock, (self.path / "events.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def events(self) -> list[dict[str, Any]]:
        p = self.path / "events.jsonl"
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    def screenshot(self, variant: str, name: str, data: bytes) -> Path:
        d = self.path / "screenshots" / variant
        d.mkdir(parents=True, exist_ok=True)
        out = d / f"{name}.png"
        out.write_bytes(data)
        return out
