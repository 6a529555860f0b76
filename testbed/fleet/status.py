"""``testbed jobs``: queued, running (where, since when, which phase), done and failed jobs,
and the live workers with what they offer. It first brings finished runs in (``ingest``) and
re-sends jobs of dead workers (``reap``), as every coordinator command does."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testbed.fleet.bundle import Store
from testbed.fleet.capabilities import Capabilities
from testbed.fleet.engine import celery_app, connect, key
from testbed.fleet.ledger import Job, Ledger, _s

if TYPE_CHECKING:
    import redis

GROUPS = (("queued", ("sending", "queued")), ("running", ("running",)),
          ("done", ("done", "indexed")), ("failed", ("failed",)))


def live_workers(r: redis.Redis) -> list[Capabilities]:
    out = []
    for k in sorted(r.scan_iter(match=key("worker", "*"))):
        raw = r.get(k)
        if raw is not None:
            out.append(Capabilities.from_json(json.loads(_s(raw))))
    return out


def settle(broker: str, results: Path, index: Path | None = None) -> tuple[Ledger, Store,
                                                                             list[str]]:
    """Connect, re-send lost jobs, bring finished runs in; the sentences of what was done."""
    r = connect(broker)
    ledger, store = Ledger(r), Store(results, index)
    lines = ledger.reap(celery_app(broker))
    lines += store.ingest(ledger)
    return ledger, store, lines


def _ago(t: float | None) -> str:
    if t is None:
        return "-"
    stamp = datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%H:%M:%SZ")
    return f"{stamp} ({int(time.time() - t)} s ago)"


def describe(job: Job) -> str:
    s = job.spec
    head = f"  {job.id}  {s.label}"
    if job.state in ("sending", "queued"):
        return f"{head}  attempt {job.attempt}/{job.max_attempts}, queue {s.queue}"
    if job.state == "running":
        return (f"{head}  on {job.get('worker')} since {_ago(job.time('since'))}, "
                f"phase: {job.get('phase') or '-'} (attempt {job.attempt}/{job.max_attempts})")
    if job.state in ("done", "indexed"):
        took = (job.time("finished") or 0) - (job.time("started") or 0)
        retried = f", retried ({len(job.lost)} attempt(s) lost)" if job.lost else ""
        where = "indexed" if job.state == "indexed" else "waiting to be indexed"
        return (f"{head}  run {job.get('run_id')} ({job.get('status')}) on {job.get('worker')}"
                f" in {took:.0f} s, {where}{retried}")
    return f"{head}  FAILED: {job.get('error')} (attempt {job.attempt}/{job.max_attempts})"


def format_jobs(jobs: list[Job], workers: list[Capabilities]) -> str:
    lines = []
    for title, states in GROUPS:
        group = [j for j in jobs if j.state in states]
        lines.append(f"{title} ({len(group)})")
        lines += [describe(j) for j in group]
    lines.append(f"workers ({len(workers)} live)")
    for w in workers:
        lines.append(f"  {w.worker} on {w.host}: providers {', '.join(w.providers) or 'none'}"
                     f", routes {', '.join(w.routes)}, exits {', '.join(w.exits) or '-'}, "
                     f"boxes {len(w.boxes)}, {w.cores} cores, {w.memory_mb} MiB, "
                     f"{w.concurrency} at a time"
                     + "".join(f"; {p} not offered: {why}" for p, why in w.problems.items()))
    return "\n".join(lines)


def counts(jobs: list[Job]) -> dict[str, Any]:
    return {title: sum(j.state in states for j in jobs) for title, states in GROUPS} | {
        "retried": sum(bool(j.lost) for j in jobs)}


def main(args: Any) -> int:
    ledger, _, lines = settle(args.broker, args.results, args.index)
    jobs, workers = ledger.all(), live_workers(ledger.r)
    if args.json:
        print(json.dumps({"jobs": [j.to_json() for j in jobs],
                          "workers": [w.to_json() for w in workers],
                          "counts": counts(jobs)}, indent=2))
        return 0
    for line in lines:
        print(line)
    print(format_jobs(jobs, workers))
    return 0
