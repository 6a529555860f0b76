"""``testbed worker``: one lab host's worker. It advertises what it can run, takes jobs from
the Celery queues it can serve, runs each (one at a time, or ``concurrency`` in threads),
sends the run back as a bundle, and keeps a lease on every job it runs.

On start it first settles what an earlier incarnation left: jobs it was running when it died
(``RESULTS/.fleet/worker-<name>.json``) get their runs marked abandoned, their lab objects
swept (only those runs' own lab tags, as ``testbed lab cleanup --tag``), and their partial
runs sent to the coordinator as partial bundles (kept, never indexed).

Every ``heartbeat`` seconds a thread renews the advert and re-sends jobs of workers that
stopped beating (``Ledger.reap``); beside each job, in the process running it, a thread renews
that job's lease. Every ``recheck`` seconds the worker re-runs the pre-flight: queues it can
no longer serve are cancelled, and a job that arrives for something it lacks now is put back
on its queue untouched.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from testbed._digest import file_sha256
from testbed._errors import TestbedError
from testbed.fleet.bundle import FLEET_DIR, pack, sha256
from testbed.fleet.capabilities import Capabilities, Probe, WorkerConfig, probe
from testbed.fleet.engine import TASK, FleetInputError, celery_app, connect, key, send
from testbed.fleet.ledger import Ledger
from testbed.fleet.spec import JobSpec
from testbed.run.liveness import Owner, owner_of

Progress = Callable[[str], None]
RunFn = Callable[[Any, Path, Progress], Path]  # (Scenario, results, progress) -> run dir
RUN_LINE = re.compile(r"^run (\S+) \(lab tag ([0-9a-f]+)\)")
IDLE_QUEUE = "fleet.idle"


def lab_run(scenario: Any, results: Path, progress: Progress) -> Path:
    from testbed.orchestrator.run import run_scenario

    return run_scenario(scenario, results, progress=progress).run.path


def load_runner(spec: str | None) -> RunFn:
    """``MODULE:FUNCTION`` (a test's or benchmark's run function), default: the real run."""
    if not spec:
        return lab_run
    module, _, name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise FleetInputError(f"--runner {spec}: cannot load it: {e}") from e
    return fn  # type: ignore[no-any-return]


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


class Worker:
    def __init__(self, broker: str, results: Path, scenarios: Path, config: WorkerConfig,
                 *, heartbeat: float = 5.0, recheck: float = 60.0,
                 visibility: float = 3600.0, run: RunFn = lab_run,
                 caps_probe: Probe = probe) -> None:
        self.config, self.results = config, Path(results).resolve()
        self.scenarios = Path(scenarios).resolve()
        self.heartbeat, self.recheck, self.run, self.probe = heartbeat, recheck, run, caps_probe
        self.r = connect(broker)
        self.ledger = Ledger(self.r, lease=heartbeat * 3)
        self.app = celery_app(broker, visibility)
        self.hostname = f"{config.name}@{socket.gethostname()}"
        self.caps: Capabilities = self.probe(config)
        self.current: dict[str, dict[str, Any]] = {}  # job id -> what the state file says
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # -- the state files: what each process of this worker is running ---------------------
    def state_file(self, pid: int | None = None) -> Path:
        """``RESULTS/.fleet/worker-<name>.<pid>.json``: one per process running jobs (a
        prefork pool's children each write their own)."""
        return self.results / FLEET_DIR / f"worker-{self.config.name}.{pid or os.getpid()}.json"

    def _save(self) -> None:
        path = self.state_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"owner": Owner.me().to_json(), "jobs": self.current}))
        os.replace(tmp, path)

    def _track(self, job_id: str, **values: Any) -> None:
        with self._lock:
            if values.pop("done", False):
                self.current.pop(job_id, None)
            else:
                self.current.setdefault(job_id, {}).update(values)
            if self.current:
                self._save()
            else:
                self.state_file().unlink(missing_ok=True)

    def recover(self) -> list[str]:
        """Settle the jobs a dead earlier incarnation of this worker was running."""
        out = []
        folder = self.results / FLEET_DIR
        for path in sorted(folder.glob(f"worker-{self.config.name}.*.json")):
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            owner = owner_of(state.get("owner"))
            if owner is not None and owner.alive() and owner != Owner.me():
                raise FleetInputError(f"worker {self.config.name} is already running on this "
                                      f"results folder (pid {owner.pid})")
            for job_id, entry in state.get("jobs", {}).items():
                out += self._settle(job_id, entry)
            path.unlink(missing_ok=True)
        return out

    def _settle(self, job_id: str, entry: dict[str, Any]) -> list[str]:
        from testbed.orchestrator.rundir import mark_abandoned

        out = []
        run = Path(entry["run_path"]) if entry.get("run_path") else None
        tag = entry.get("lab_tag")
        if tag and os.geteuid() == 0:
            from testbed.lab.netns import sweep

            removed = [r for r in sweep(only=tag) if not r.startswith("kept ")]
            out.append(f"job {job_id}: swept lab tag {tag} ({len(removed)} object(s))")
        if run is not None and run.is_dir():
            mark_abandoned(run.parent)
            data = pack(run, {"job": job_id, "attempt": entry.get("attempt"),
                              "worker": self.config.name, "partial": True,
                              "why": "the worker was killed during this run"})
            self.r.hset(key("partial", job_id, str(entry.get("attempt"))),
                        mapping={"data": data, "sha256": sha256(data),
                                 "worker": self.config.name})
            out.append(f"job {job_id}: partial run {run} marked abandoned and sent back")
        return out

    # -- the heartbeat ----------------------------------------------------------------------
    def advertise(self) -> None:
        self.r.set(key("worker", self.config.name), self.caps.dumps(),
                   px=int(self.heartbeat * 3000))

    def _probing(self) -> None:
        """Re-run the pre-flight every ``recheck`` seconds (its own thread: the vagrant
        checks take seconds, the heartbeat must not wait for them)."""
        while not self._stop.wait(self.recheck):
            try:
                self._reprobe()
            except Exception as e:  # the broker restarting: try again next time
                say(f"pre-flight: {type(e).__name__}: {e}")

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self.advertise()
                for line in self.ledger.reap(self.app):
                    say(line)
            except Exception as e:  # the broker restarting: keep beating
                say(f"heartbeat: {type(e).__name__}: {e}")

    def _reprobe(self) -> None:
        old = set(self.caps.queues())
        self.caps = self.probe(self.config)
        new = set(self.caps.queues())
        for q in sorted(old - new):
            say(f"pre-flight changed: no longer taking queue {q} "
                f"({'; '.join(f'{p}: {w}' for p, w in self.caps.problems.items())})")
            self.app.control.cancel_consumer(q, destination=[self.hostname])
        for q in sorted(new - old):
            say(f"pre-flight changed: taking queue {q}")
            self.app.control.add_consumer(q, destination=[self.hostname])

    # -- one job ----------------------------------------------------------------------------
    def handle(self, job_id: str, attempt: int) -> str:
        """Run one delivery; returns what became of it (for logs and tests)."""
        job = self.ledger.get(job_id)
        if job is None or job.attempt != attempt or job.state not in ("queued", "sending"):
            return "dropped (an old or repeated delivery)"
        why = self.caps.cannot_run(job.spec)
        if why is not None:
            time.sleep(min(self.heartbeat, 2.0))  # let a worker that can take it
            send(self.app, job_id, attempt, job.spec.queue)
            return f"put back: {why}"
        if not self.ledger.claim(job_id, attempt, self.config.name):
            return "dropped (claimed by another delivery)"
        self._track(job_id, attempt=attempt, run_path="", lab_tag="")
        say(f"job {job_id} attempt {attempt}: {job.spec.label}")
        ended = threading.Event()
        lease = threading.Thread(target=self._keep_lease, args=(job_id, attempt, ended),
                                 name=f"fleet-lease-{job_id}", daemon=True)
        lease.start()  # in the process that runs the job: it dies with it
        try:
            return self._run(job.spec, attempt, job.lost)
        finally:
            ended.set()
            lease.join()
            self._track(job_id, done=True)

    def _keep_lease(self, job_id: str, attempt: int, ended: threading.Event) -> None:
        while not ended.wait(self.heartbeat):
            try:
                if not self.ledger.renew(job_id, attempt, self.config.name):
                    say(f"job {job_id}: no longer ours (lease lost); its run will not be "
                        "indexed")
                    return
            except Exception as e:  # the broker restarting: keep trying
                say(f"job {job_id}: lease: {type(e).__name__}: {e}")

    def _scenario(self, spec: JobSpec, attempt: int) -> tuple[Path, Path | None]:
        path = self.scenarios / spec.scenario
        if not path.is_file():
            raise FleetInputError(f"{path}: no such scenario on worker {self.config.name}")
        if file_sha256(path) != spec.sha256:
            raise FleetInputError(f"{path}: differs from the submitted scenario on worker "
                                  f"{self.config.name} (update its checkout)")
        if spec.build is None:
            return path, None
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for client in data.get("clients", {}).values():
            client["build"] = spec.build
        derived = path.with_name(f".fleet-{spec.job_id}-{attempt}.yaml")
        derived.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return derived, derived

    def _run(self, spec: JobSpec, attempt: int, lost: list[dict[str, Any]]) -> str:
        from testbed.scenario import load_scenario

        me, job_id = self.config.name, spec.job_id

        def progress(message: str) -> None:
            m = RUN_LINE.match(message)
            if m:
                self._track(job_id, run_path=m.group(1), lab_tag=m.group(2))
                self.ledger.note(job_id, run_path=m.group(1), lab_tag=m.group(2))
            phase = message.strip().splitlines()[0][:100] if message.strip() else ""
            if phase:
                self.ledger.note(job_id, phase=phase)

        derived = None
        try:
            path, derived = self._scenario(spec, attempt)
            run = self.run(load_scenario(path), self.results, progress)
        except TestbedError as e:
            self.ledger.finish(job_id, attempt, me, state="failed", phase="",
                               error=str(e).splitlines()[0], finished=str(time.time()))
            return f"failed: {e}"
        finally:
            if derived is not None:
                derived.unlink(missing_ok=True)
        self.ledger.note(job_id, phase="bundling", ran=str(time.time()))
        data = pack(run, {"job": job_id, "attempt": attempt, "worker": me,
                          "retried": attempt > 1, "lost": lost, "label": spec.label,
                          "route": spec.route, "exit": spec.exit, "build": spec.build})
        bkey = key("bundle", job_id, str(attempt))
        self.r.set(bkey, data)
        from testbed.run.store import read_manifest

        manifest = read_manifest(run)
        ok = self.ledger.finish(job_id, attempt, me, state="done", phase="",
                                finished=str(time.time()), run_id=run.name,
                                status=(manifest.status or "") if manifest else "",
                                bundle_key=bkey, bundle_sha256=sha256(data),
                                bundle_size=str(len(data)))
        if not ok:
            self.r.delete(bkey)
            return f"superseded: {run} kept here, not sent"
        return f"done: {run}"

    # -- the process ------------------------------------------------------------------------
    def serve(self) -> int:
        for line in self.recover():
            say(line)
        self.advertise()
        queues = self.caps.queues() or [IDLE_QUEUE]
        say(f"worker {self.hostname}: providers {', '.join(self.caps.providers) or 'none'}, "
            f"routes {', '.join(self.caps.routes)}, exits {', '.join(self.caps.exits) or '-'}, "
            f"{self.caps.cores} cores, {self.caps.memory_mb} MiB; queues {', '.join(queues)}")
        worker = self

        @self.app.task(name=TASK, bind=True, acks_late=True)
        def run_job(task: Any, job_id: str, attempt: int) -> None:
            say(f"job {job_id} attempt {attempt}: {worker.handle(job_id, attempt)}")

        for target in (self._beat, self._probing):
            threading.Thread(target=target, name=f"fleet{target.__name__}", daemon=True).start()
        # a run owns its process's signal handlers (SIGTERM tears its lab down): N at once
        # are N processes, never threads
        pool = ["--pool=solo", "--concurrency=1"] if self.config.concurrency == 1 else [
            "--pool=prefork", f"--concurrency={self.config.concurrency}"]
        try:
            self.app.worker_main(["--quiet", "worker", *pool, "-Q", ",".join(queues),
                                  "-n", self.hostname, "--without-gossip", "--without-mingle",
                                  "-l", "WARNING"])
        finally:
            self._stop.set()
            self.r.delete(key("worker", self.config.name))
        return 0


def main(args: Any) -> int:
    config = WorkerConfig.load(args.config, args.name, args.concurrency)
    worker = Worker(args.broker, args.results, args.scenarios_root, config,
                    heartbeat=args.heartbeat, recheck=args.recheck,
                    visibility=args.visibility, run=load_runner(args.runner))
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    warnings.filterwarnings("ignore", message=".*superuser privileges.*")  # labs need root
    return worker.serve()
