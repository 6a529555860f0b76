"""Which live run owns a lab tag: a small claim file per tag, ``/run/testbed/<tag>.json``
(``{"pid", "boot_id", "start", "run"}``), written before the run's first namespace is made
and removed once its lab is down.

``testbed lab cleanup`` removes only the objects of tags whose owner is gone: a tag whose
claim names a live process belongs to a run still going on. A tag without a claim (a lab
made by an older testbed) is judged by its processes: it is live while one of them is still
the child of a testbed process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from testbed.run.liveness import Owner, owner_of

#: where live runs claim their tags (tmpfs: claims do not outlive a reboot)
STATE_DIR = Path(os.environ.get("TESTBED_LAB_STATE", "/run/testbed"))


def claim_file(tag: str) -> Path:
    return STATE_DIR / f"{tag}.json"


def claim(tag: str, run: Path) -> None:
    """Record that this process owns ``tag`` (best effort: cleanup then judges by processes)."""
    me = Owner.me()
    try:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        claim_file(tag).write_text(json.dumps(me.to_json() | {"run": str(run)}) + "\n")
    except OSError:
        claim_file(tag).unlink(missing_ok=True)


def release(tag: str) -> None:
    try:
        claim_file(tag).unlink(missing_ok=True)
    except OSError:
        pass


def claimed_by(tag: str) -> Owner | None:
    try:
        raw = json.loads(claim_file(tag).read_text())
    except (OSError, ValueError):
        return None
    return owner_of(raw)


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _is_testbed(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"testbed" in cmd or b"pytest" in cmd


def live(tag: str, pids: list[int]) -> bool:
    """Whether the run of ``tag`` is still going on; ``pids``: the processes in its
    namespaces (used only when no claim names the owner)."""
    owner = claimed_by(tag)
    if owner is not None:
        return owner.alive()
    inside = set(pids)
    for pid in pids:
        parent = _parent(pid)
        if parent is not None and parent > 1 and parent not in inside and _is_testbed(parent):
            return True
    return False


def gone_runs() -> dict[str, Path]:
    """Tag -> run folder, of the claims whose owner is gone (runs that were killed)."""
    out = {}
    for f in sorted(STATE_DIR.glob("*.json")) if STATE_DIR.is_dir() else []:
        try:
            raw = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        owner = owner_of(raw)
        if owner is not None and not owner.alive() and isinstance(raw.get("run"), str):
            out[f.stem] = Path(raw["run"])
    return out


def sweep_stale_claims() -> list[str]:
    """Remove claims whose owner is gone; returns the tags."""
    out = []
    for f in STATE_DIR.glob("*.json") if STATE_DIR.is_dir() else []:
        owner = claimed_by(f.stem)
        if owner is None or not owner.alive():
            release(f.stem)
            out.append(f.stem)
    return out
