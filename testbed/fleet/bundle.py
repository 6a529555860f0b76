"""A run as a checksummed bundle, and its arrival on the coordinator.

The worker packs ``<scenario>/<run-id>/`` (with ``fleet.json``: job, attempt, worker, the
attempts lost before it) into a gzip tarball, stores it in the broker beside the job with its
sha256. The coordinator's ``ingest`` (run by ``testbed jobs``, ``submit --wait``,
``nightly --distributed``) checks the sum, unpacks into ``RESULTS/.fleet/incoming/`` and
renames the run into ``RESULTS/<scenario>/<run-id>`` (one rename: a run is there whole or not
at all), then indexes it in ``RESULTS/history.sqlite`` with ``History.record`` and notes the
job in that file's ``fleet_jobs`` table. The job id is the table's key: a job whose bundle
arrives twice (two attempts that both finished) is indexed once; the other run is kept under
``RESULTS/.fleet/duplicates/``. Partial runs of lost attempts go to
``RESULTS/.fleet/partial/<job>-<attempt>/``, never into the index.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from testbed.fleet.engine import FleetError, key
from testbed.fleet.ledger import Ledger, _s
from testbed.history.index import History, default_index
from testbed.run.files import FLEET, MANIFEST

FLEET_DIR = ".fleet"  # under the results folder; dot-folders are not scenarios
_TABLE = """CREATE TABLE IF NOT EXISTS fleet_jobs (
    job_id TEXT PRIMARY KEY, scenario TEXT NOT NULL, run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL, retried INTEGER NOT NULL, worker TEXT NOT NULL,
    lost TEXT NOT NULL, indexed REAL NOT NULL)"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack(run: Path, fleet: dict[str, Any]) -> bytes:
    """``run`` (``.../<scenario>/<run-id>``) as a gzip tarball, ``fleet.json`` written first."""
    (run / FLEET).write_text(json.dumps(fleet, indent=2) + "\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        tar.add(run, arcname=f"{run.parent.name}/{run.name}")
    return buf.getvalue()


def _members(tar: tarfile.TarFile, dest: Path) -> Iterator[tarfile.TarInfo]:
    for m in tar:
        try:
            yield tarfile.data_filter(m, str(dest))
        except tarfile.FilterError:  # a link out of the run: not carried over
            continue


def unpack(data: bytes, digest: str, dest: Path) -> Path:
    """Check ``data`` against ``digest``, unpack it into the empty folder ``dest``; returns the
    run directory inside (``dest/<scenario>/<run-id>``)."""
    if sha256(data) != digest:
        raise FleetError(f"bundle checksum mismatch (expected {digest[:12]}..., got "
                         f"{sha256(data)[:12]}...)")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(dest, members=_members(tar, dest), filter="fully_trusted")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise FleetError(f"bundle cannot be unpacked: {e}") from e
    runs = [p.parent for p in dest.glob(f"*/*/{MANIFEST}")]
    if len(runs) != 1:
        raise FleetError(f"bundle holds {len(runs)} runs, expected one")
    if runs[0].parent.name.startswith(".") or runs[0].name.startswith("."):
        raise FleetError(f"bundle's run {runs[0].parent.name}/{runs[0].name} is not a "
                         "scenario/run-id name")
    return runs[0]


@contextmanager
def _lock(results: Path) -> Iterator[None]:
    (results / FLEET_DIR).mkdir(parents=True, exist_ok=True)
    fd = os.open(results / FLEET_DIR / "ingest.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Store:
    """The coordinator's side: ``RESULTS`` and its history index."""

    def __init__(self, results: Path, index: Path | None = None) -> None:
        self.results = Path(results).resolve()
        self.history = History(index or default_index(self.results))

    def _db(self) -> closing[sqlite3.Connection]:
        self.history.scenarios()  # creates the index's own tables first
        con = sqlite3.connect(self.history.path, timeout=30)
        con.execute(_TABLE)
        return closing(con)

    def indexed(self, job_id: str) -> tuple[str, str] | None:
        """(scenario, run id) the job was indexed as, None if it was not."""
        with self._db() as con:
            row = con.execute("SELECT scenario, run_id FROM fleet_jobs WHERE job_id=?",
                              (job_id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def fleet_rows(self) -> list[dict[str, Any]]:
        with self._db() as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute("SELECT * FROM fleet_jobs ORDER BY indexed")]

    def _place(self, data: bytes, digest: str, job_id: str, into: str) -> Path:
        incoming = self.results / FLEET_DIR / "incoming" / f"{job_id}-{time.time_ns()}"
        incoming.mkdir(parents=True)
        try:
            run = unpack(data, digest, incoming)
            target = self.results / into / run.parent.name / run.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.rename(run, target)  # the one step that makes the run appear, whole
            return target
        finally:
            shutil.rmtree(incoming, ignore_errors=True)

    def ingest_one(self, ledger: Ledger, job_id: str) -> str:
        job = ledger.get(job_id)
        if job is None or job.state != "done":
            return ""
        data = ledger.r.get(job.get("bundle_key"))
        if data is None:
            raise FleetError(f"job {job_id}: done, but its bundle is missing from the broker")
        assert isinstance(data, bytes)
        run_id = job.get("run_id")
        known = self.indexed(job_id)
        if known is not None and known[1] != run_id:
            where = self._place(data, job.get("bundle_sha256"), job_id,
                                f"{FLEET_DIR}/duplicates/{job_id}")
            out = f"job {job_id}: delivered twice; second run kept at {where}, not indexed"
        else:
            run = self._place(data, job.get("bundle_sha256"), job_id, "")
            self.history.record(run)
            with self._db() as con, con:
                con.execute("INSERT OR IGNORE INTO fleet_jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (job_id, run.parent.name, run.name, job.attempt,
                             int(job.attempt > 1), job.get("worker"), json.dumps(job.lost),
                             time.time()))
            out = f"job {job_id}: {run} indexed"
        ledger.note(job_id, state="indexed", indexed=str(time.time()))
        ledger.r.delete(job.get("bundle_key"))
        return out

    def ingest_partials(self, ledger: Ledger) -> list[str]:
        out = []
        for k in ledger.r.scan_iter(match=key("partial", "*")):
            name = _s(k)
            job_id, attempt = name.rsplit(":", 2)[-2:]
            fields = {_s(a): b for a, b in ledger.r.hgetall(name).items()}
            data = fields.get("data")
            if not isinstance(data, bytes):
                continue
            run = self._place(data, _s(fields["sha256"]), job_id,
                              f"{FLEET_DIR}/partial/{job_id}-{attempt}")
            ledger.r.delete(name)
            ledger.note(job_id, **{f"partial_{attempt}": str(run)})
            out.append(f"job {job_id}: partial run of attempt {attempt} kept at {run} "
                       "(not indexed)")
        return out

    def ingest(self, ledger: Ledger) -> list[str]:
        """Bring every finished job's run (and lost attempts' partial runs) in; a sentence
        each. Safe to run from several commands at once (a lock) and again after a crash."""
        out = []
        with _lock(self.results):
            for job in ledger.all():
                if job.state == "done":
                    try:
                        out.append(self.ingest_one(ledger, job.id))
                    except FleetError as e:
                        out.append(f"job {job.id}: not ingested: {e}")
            out += self.ingest_partials(ledger)
        return [line for line in out if line]
