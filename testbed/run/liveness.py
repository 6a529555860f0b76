"""Which process a run belongs to, and whether that process is still there.

A run records its **owner** in the manifest: the pid, the machine's boot id
(``/proc/sys/kernel/random/boot_id``) and the process's start time (clock ticks since boot,
field 22 of ``/proc/<pid>/stat``). The three together name one process for ever: a pid reused
after a reboot or after the run died has another boot id or start time. A run whose status
says it is going on (``running``, ``analyzing``) but whose owner is gone was killed: its
status is read as ``abandoned``. Manifests written before owners were recorded are read as
they say.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.run.shapes import Record

#: statuses of a run whose process is still at work on it
LIVE_STATUSES = ("running", "analyzing")
ABANDONED = "abandoned"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot); None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:  # the command name (field 2) may hold spaces and parentheses: split after it
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


@dataclass(frozen=True)
class Owner(Record):
    """One process on one boot of one machine."""

    pid: int
    boot_id: str = ""
    start: int | None = None

    @classmethod
    def me(cls) -> Owner:
        pid = os.getpid()
        return cls(pid=pid, boot_id=boot_id(), start=start_ticks(pid))

    def alive(self) -> bool:
        """The process is still there (same boot, same pid, same start time)."""
        if self.boot_id and self.boot_id != boot_id():
            return False
        now = start_ticks(self.pid)
        if now is None:
            return False
        return self.start is None or now == self.start


def owner_of(raw: Mapping[str, Any] | None) -> Owner | None:
    """The owner recorded in ``raw`` (a manifest's ``process``), None when absent or bad."""
    if not isinstance(raw, Mapping):
        return None
    try:
        return Owner.from_json(raw)
    except Exception:  # a damaged record names no process
        return None


def effective_status(status: str | None, owner: Mapping[str, Any] | None) -> str:
    """``status`` as it stands now: a live status whose owner is gone is ``abandoned``."""
    status = status or "unknown"
    who = owner_of(owner)
    if status in LIVE_STATUSES and who is not None and not who.alive():
        return ABANDONED
    return status
