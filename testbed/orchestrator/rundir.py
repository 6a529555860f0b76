"""One run's directory: ``results/<scenario>/<run-id>/`` (its layout: ``testbed.run.files``).
Never overwritten; every stage writes its own files, so a crashed run stays readable and any
stage can be re-run alone. ``RunDir`` is the orchestrator's handle: it creates the directory
and writes the manifest and events as the run goes, safely from several threads."""

from __future__ import annotations

import datetime
import secrets
import threading
from pathlib import Path
from typing import Any

from testbed.run import Event, Manifest, store
from testbed.run import files as f


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def create(cls, results: Path, scenario: str) -> RunDir:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = results / scenario / f"{stamp}-{secrets.token_hex(2)}"
        path.mkdir(parents=True, exist_ok=False)
        for sub in f.RUN_SUBDIRS:
            (path / sub).mkdir()
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run; its manifest must be readable (RunFileError names it if not)."""
        store.open_manifest(path)
        return cls(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        """``name`` (one of ``testbed.run.files``) in this run."""
        return self.path / name

    @property
    def pcap(self) -> Path:
        return self.path / f.PCAP

    def manifest(self) -> Manifest:
        return store.read_manifest(self.path) or Manifest()

    def update_manifest(self, **fields: Any) -> Manifest:
        """Set ``fields`` (JSON values: what ``Manifest.to_json`` holds) in the manifest."""
        with self._lock:
            manifest = self.manifest().updated(**fields)
            store.write_manifest(self.path, manifest)
            return manifest

    def event(self, **record: Any) -> None:
        event = Event.from_json(record)
        with self._lock:
            store.append_event(self.path, event)

    def events(self) -> list[Event]:
        return store.read_events(self.path)[0]

    def screenshot(self, variant: str, name: str, data: bytes) -> Path:
        """``screenshots/<variant>/<name>.png``; both names made plain (``name`` comes from the
        guest), so the file is always inside the run."""
        out = f.inside(self.path / f.SCREENSHOTS_DIR, variant, name, suffix=".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)  # a link planted there is replaced, not followed
        out.write_bytes(data)
        return out
