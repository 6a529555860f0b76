"""Each job's state, kept in Redis beside Celery's queue (Celery carries deliveries; this says
which delivery may run, and what became of it).

    sending -> queued -> running -> done (its bundle waits in Redis) -> indexed
                   ^         |  lease expired (worker dead): attempt+1, or failed after N
                   +---------+
    failed: the run could not be made, or every attempt was lost

A delivery carries ``(job_id, attempt)``; ``claim`` lets exactly one delivery of the current
attempt run (a message Redis hands out twice, or an old attempt's message coming back after
the visibility timeout, is dropped). While a job runs its worker renews a **lease** key; when
the lease expires the job's attempt is lost and ``reap`` re-sends it. Every transition is
one Lua script: atomic on the broker, whoever runs it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from testbed.fleet.engine import FleetError, key, send
from testbed.fleet.spec import JobSpec

if TYPE_CHECKING:
    import redis
    from celery import Celery

STATES = ("sending", "queued", "running", "done", "indexed", "failed")
SEND_GRACE = 30.0  # a job left in 'sending' this long by a submitter that died is re-sent

_CLAIM = """
local s = redis.call('HGET', KEYS[1], 'state')
if (s ~= 'queued' and s ~= 'sending') or redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1]
then return 0 end
redis.call('HSET', KEYS[1], 'state', 'running', 'worker', ARGV[2], 'since', ARGV[3],
           'phase', 'starting', 'started', ARGV[3], 'run_path', '', 'lab_tag', '')
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
return 1
"""
_MINE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' or
   redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] or
   redis.call('HGET', KEYS[1], 'worker') ~= ARGV[2] then return 0 end
"""
_RENEW = _MINE + "redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) return 1"
_FINISH = _MINE + """
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('DEL', KEYS[2])
return 1
"""
_REAP = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' or
   redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] or
   redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('RPUSH', KEYS[3], ARGV[2])
local attempt = tonumber(ARGV[1])
if attempt >= tonumber(redis.call('HGET', KEYS[1], 'max_attempts')) then
  redis.call('HSET', KEYS[1], 'state', 'failed', 'phase', '', 'finished', ARGV[3],
             'error', 'every attempt was lost (' .. attempt .. ' of ' .. attempt .. ')')
  return 2
end
redis.call('HSET', KEYS[1], 'state', 'sending', 'attempt', tostring(attempt + 1),
           'worker', '', 'phase', '', 'sent', ARGV[3])
return 1
"""


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass
class Job:
    """A job record as read from the broker."""

    spec: JobSpec
    state: str
    attempt: int
    max_attempts: int
    fields: dict[str, str]
    lost: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.spec.job_id

    def get(self, name: str) -> str:
        return self.fields.get(name, "")

    def time(self, name: str) -> float | None:
        v = self.fields.get(name)
        return float(v) if v else None

    def to_json(self) -> dict[str, Any]:
        return {"job": self.id, "spec": self.spec.to_json(), "state": self.state,
                "attempt": self.attempt, "max_attempts": self.max_attempts,
                "lost": self.lost} | {k: v for k, v in self.fields.items() if k != "spec"}


class Ledger:
    """Job records on broker connection ``r``; ``lease`` seconds a heartbeat lasts."""

    def __init__(self, r: redis.Redis, lease: float = 15.0) -> None:
        self.r, self.lease_ms = r, int(lease * 1000)
        self._claim = r.register_script(_CLAIM)
        self._renew = r.register_script(_RENEW)
        self._finish = r.register_script(_FINISH)
        self._reap = r.register_script(_REAP)

    @staticmethod
    def keys(job_id: str) -> list[str]:
        return [key("job", job_id), key("lease", job_id), key("lost", job_id)]

    # -- submitter ---------------------------------------------------------------------------
    def create(self, spec: JobSpec, max_attempts: int) -> None:
        now = str(time.time())
        with self.r.pipeline() as p:  # MULTI/EXEC: the record and its listing together
            p.hset(key("job", spec.job_id), mapping={
                "spec": spec.dumps(), "state": "sending", "attempt": "1",
                "max_attempts": str(max_attempts), "submitted": now, "sent": now})
            p.zadd(key("jobs"), {spec.job_id: float(now)})
            p.execute()

    def sent(self, job_id: str, attempt: int) -> None:
        """The delivery of ``attempt`` is on its queue."""
        self.r.eval("if redis.call('HGET', KEYS[1], 'state') == 'sending' and "
                    "redis.call('HGET', KEYS[1], 'attempt') == ARGV[1] then "
                    "redis.call('HSET', KEYS[1], 'state', 'queued') end", 1,
                    key("job", job_id), str(attempt))

    def dispatch(self, app: Celery, job: JobSpec, attempt: int) -> None:
        send(app, job.job_id, attempt, job.queue)
        self.sent(job.job_id, attempt)

    # -- worker ------------------------------------------------------------------------------
    def claim(self, job_id: str, attempt: int, worker: str) -> bool:
        return bool(self._claim(keys=self.keys(job_id)[:2],
                                args=[str(attempt), worker, str(time.time()), self.lease_ms]))

    def renew(self, job_id: str, attempt: int, worker: str) -> bool:
        """Extend the lease; False when the job is no longer this worker's."""
        return bool(self._renew(keys=self.keys(job_id)[:2],
                                args=[str(attempt), worker, self.lease_ms]))

    def note(self, job_id: str, **values: str) -> None:
        self.r.hset(key("job", job_id), mapping=dict(values))  # type: ignore[arg-type]

    def finish(self, job_id: str, attempt: int, worker: str, **values: str) -> bool:
        """Set ``values`` (state done/failed, ...) if the job is still this worker's attempt."""
        args: list[str] = [str(attempt), worker]
        for k, v in values.items():
            args += [k, v]
        return bool(self._finish(keys=self.keys(job_id)[:2], args=args))

    # -- anyone ------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        raw = {_s(k): _s(v) for k, v in self.r.hgetall(key("job", job_id)).items()}
        if not raw:
            return None
        lost = [json.loads(_s(x)) for x in self.r.lrange(key("lost", job_id), 0, -1)]
        return Job(JobSpec.from_json(json.loads(raw["spec"])), raw["state"],
                   int(raw["attempt"]), int(raw["max_attempts"]), raw, lost)

    def all(self) -> list[Job]:
        ids = [_s(x) for x in self.r.zrange(key("jobs"), 0, -1)]
        return [j for i in ids if (j := self.get(i)) is not None]

    def reap(self, app: Celery) -> list[str]:
        """Re-send jobs whose worker stopped beating (or whose submitter died before sending);
        returns a sentence per job acted on."""
        out = []
        now = time.time()
        for job in self.all():
            if job.state == "sending" and now - (job.time("sent") or 0) > SEND_GRACE:
                self.note(job.id, sent=str(now))
                self.dispatch(app, job.spec, job.attempt)
                out.append(f"job {job.id}: attempt {job.attempt} sent again")
                continue
            if job.state != "running":
                continue
            lost = json.dumps({"attempt": job.attempt, "worker": job.get("worker"),
                               "phase": job.get("phase"), "since": job.time("since"),
                               "run_path": job.get("run_path"), "lab_tag": job.get("lab_tag"),
                               "lost_at": now})
            verdict = self._reap(keys=self.keys(job.id), args=[str(job.attempt), lost, str(now)])
            if verdict == 1:
                self.dispatch(app, job.spec, job.attempt + 1)
                out.append(f"job {job.id}: worker {job.get('worker')} stopped beating in phase "
                           f"{job.get('phase')!r}; attempt {job.attempt + 1} sent")
            elif verdict == 2:
                out.append(f"job {job.id}: worker {job.get('worker')} stopped beating; "
                           f"no attempt left (failed)")
        return out

    def forget(self, job_id: str) -> None:
        with self.r.pipeline() as p:
            for k in self.keys(job_id):
                p.delete(k)
            for k in self.r.scan_iter(match=key("bundle", job_id, "*")):
                p.delete(k)
            p.zrem(key("jobs"), job_id)
            p.execute()


def require(ledger: Ledger, job_id: str) -> Job:
    job = ledger.get(job_id)
    if job is None:
        raise FleetError(f"job {job_id}: no such job on the broker")
    return job
