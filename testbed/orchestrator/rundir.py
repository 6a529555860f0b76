"""One run's directory: ``results/<scenario>/<run-id>/`` (its layout: ``testbed.run.files``).
Never overwritten; every stage writes its own files, so a crashed run stays readable and any
stage can be re-run alone. ``RunDir`` is the orchestrator's handle: it creates the directory
and writes the manifest and events as the run goes, safely from several threads."""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from testbed._errors import TestbedError
from testbed.run import Event, Manifest, store
from testbed.run import files as f
from testbed.run.liveness import ABANDONED, LIVE_STATUSES

RESERVE_BYTES = 64 * 1024  # a manifest's worth, several times over


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

    def reserve(self, size: int = RESERVE_BYTES) -> None:
        """Keep ``size`` bytes of the disk for the run's last records (``release_reserve``)."""
        with self.file(f.RESERVE).open("wb") as out:
            out.write(bytes(size))
            out.flush()
            os.fsync(out.fileno())

    def release_reserve(self) -> None:
        with contextlib.suppress(OSError):
            self.file(f.RESERVE).unlink(missing_ok=True)

    def screenshot(self, variant: str, name: str, data: bytes) -> Path:
        """``screenshots/<variant>/<name>.png``; both names made plain (``name`` comes from the
        guest), so the file is always inside the run."""
        out = f.inside(self.path / f.SCREENSHOTS_DIR, variant, name, suffix=".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)  # a link planted there is replaced, not followed
        out.write_bytes(data)
        return out


def mark_abandoned(scenario_dir: Path, but: Path | None = None) -> list[Path]:
    """Set ``status: abandoned`` in the runs under ``scenario_dir`` that say they are going
    on but whose process is gone (a SIGKILL, a crash); returns them. Best effort: a run that
    cannot be read or written is left as it is."""
    out = []
    for manifest in sorted(scenario_dir.glob(f"*/{f.MANIFEST}")):
        path = manifest.parent
        if path == but:
            continue
        try:
            m = store.read_manifest(path)
            if (m is None or m.status not in LIVE_STATUSES
                    or m.current_status != ABANDONED):
                continue
            store.write_manifest(path, m.updated(
                status=ABANDONED, error=m.error or f"its process (pid {m.process.get('pid')}) "
                "ended without finishing the run"))
        except (TestbedError, OSError):
            continue
        out.append(path)
    return out
