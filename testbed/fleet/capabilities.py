"""What a worker can run, and whether a job fits it.

A worker advertises its capabilities in Redis (``engine.key("worker", name)``, with a time to
live renewed by its heartbeat: a worker that stops beating disappears):

* providers whose pre-flight passes here (``testbed doctor``'s lab checks, the vagrant checks);
* vagrant boxes present (``vagrant box list``);
* routes and exit countries it offers: from the worker config file (routes are built per host;
  default ``simulated`` only, no exit country);
* cores, memory, and how many jobs it runs at once.

The worker config file (YAML, every key optional)::

    name: lab-host-1          # default: the host name
    routes: [simulated, vpn]  # default: [simulated]
    exits: [CN, US]           # exit countries its routes reach; default: none
    providers: [lab]          # offer only these (still subject to pre-flight)
    concurrency: 1
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from testbed.fleet.engine import FleetInputError, queue_name
from testbed.fleet.spec import JobSpec

PROVIDERS = ("lab", "vagrant")
CONFIG_KEYS = {"name", "routes", "exits", "providers", "concurrency"}


@dataclass(frozen=True)
class WorkerConfig:
    name: str
    routes: tuple[str, ...] = ("simulated",)
    exits: tuple[str, ...] = ()
    providers: tuple[str, ...] = PROVIDERS
    concurrency: int = 1

    @classmethod
    def load(cls, path: Path | None, name: str | None = None,
             concurrency: int | None = None) -> WorkerConfig:
        data: dict[str, Any] = {}
        if path is not None:
            try:
                data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
                raise FleetInputError(f"{path}: cannot read the worker config: {e}") from e
            if not isinstance(data, dict) or set(data) - CONFIG_KEYS:
                raise FleetInputError(f"{path}: a worker config is a mapping of "
                                      f"{', '.join(sorted(CONFIG_KEYS))}")
        listed = {k: tuple(str(x) for x in data[k]) for k in ("routes", "exits", "providers")
                  if k in data and isinstance(data[k], list)}
        for k in ("routes", "exits", "providers"):
            if k in data and k not in listed:
                raise FleetInputError(f"{path}: {k}: a list")
        bad = set(listed.get("providers", ())) - set(PROVIDERS)
        if bad:
            raise FleetInputError(f"{path}: providers: unknown {', '.join(sorted(bad))} "
                                  f"(known: {', '.join(PROVIDERS)})")
        n = concurrency or data.get("concurrency", 1)
        if not isinstance(n, int) or not 1 <= n <= 64:
            raise FleetInputError(f"{path}: concurrency: a whole number from 1 to 64")
        return cls(name=name or str(data.get("name") or socket.gethostname()),
                   concurrency=n, **listed)


@dataclass(frozen=True)
class Capabilities:
    """What one worker offers now."""

    worker: str
    host: str
    providers: tuple[str, ...]
    boxes: tuple[str, ...]
    routes: tuple[str, ...]
    exits: tuple[str, ...]
    cores: int
    memory_mb: int
    concurrency: int
    problems: dict[str, str] = field(default_factory=dict)  # provider -> why not offered

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Capabilities:
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in data.items()}
        return cls(**fields)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    def queues(self) -> list[str]:
        """Every queue whose jobs this worker can run (box needs are checked per job)."""
        return sorted({queue_name(p, r, e) for p in self.providers
                       for r in (None, *self.routes) for e in (None, *self.exits)})

    def cannot_run(self, job: JobSpec) -> str | None:
        """Why this worker cannot run ``job`` (None: it can)."""
        if job.provider not in self.providers:
            why = self.problems.get(job.provider, "not offered by its config")
            return f"provider {job.provider} unavailable ({why})"
        if job.route is not None and job.route not in self.routes:
            return f"route {job.route} not offered (routes: {', '.join(self.routes) or '-'})"
        if job.exit is not None and job.exit not in self.exits:
            return (f"exit {job.exit} not offered (exit countries: "
                    f"{', '.join(self.exits) or 'none'})")
        missing = [b for b in job.boxes if b not in self.boxes]
        if missing:
            return f"vagrant box(es) {', '.join(missing)} not present"
        return None


def _memory_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return 0


def vagrant_boxes() -> tuple[str, ...]:
    try:
        out = subprocess.run(["vagrant", "box", "list", "--machine-readable"],
                             capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(sorted({parts[3] for line in out.splitlines()
                         if len(parts := line.split(",")) > 3 and parts[2] == "box-name"}))


def provider_problems() -> dict[str, str]:
    """Each provider's failing pre-flight checks here ('' when it passes)."""
    from testbed.doctor import lab_checks
    from testbed.vagrant.preflight import vagrant_checks

    out = {}
    for name, checks in (("lab", lab_checks), ("vagrant", vagrant_checks)):
        failed = [c.what for c in checks() if not c.ok]
        out[name] = "; ".join(failed) if failed else ""
    return out


Probe = Callable[[WorkerConfig], Capabilities]


def probe(config: WorkerConfig) -> Capabilities:
    """This machine's capabilities under ``config`` (runs the pre-flight checks)."""
    problems = provider_problems()
    offered = tuple(p for p in config.providers if not problems.get(p))
    return Capabilities(
        worker=config.name, host=socket.gethostname(), providers=offered,
        boxes=vagrant_boxes() if "vagrant" in offered else (), routes=config.routes,
        exits=config.exits, cores=os.cpu_count() or 1, memory_mb=_memory_mb(),
        concurrency=config.concurrency,
        problems={p: why for p, why in problems.items() if why})


def refusal(job: JobSpec, workers: list[Capabilities]) -> str | None:
    """Why no live worker can run ``job`` (None: one can)."""
    if not workers:
        return "no live worker (start one: testbed worker --broker URL)"
    reasons = [f"{w.worker}: {why}" for w in workers if (why := w.cannot_run(job))]
    return None if len(reasons) < len(workers) else "; ".join(reasons)
