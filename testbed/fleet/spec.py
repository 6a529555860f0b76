"""What to run: a ``JobSpec`` per run, from one scenario or a matrix file.

A matrix file (YAML)::

    scenarios: [skype-2013-lab.yaml, mumble-call-lab.yaml]   # relative to the matrix file
    builds: [lab/builds/regular.yaml, lab/builds/tom-en.yaml] # optional: every client gets it
    vantages: [{route: simulated}, {route: vpn, exit: CN}]    # optional
    constraints: {provider: lab}                              # optional, for every job
    repeat: 2                                                 # optional

gives scenarios x builds x vantages x repeat jobs. Scenarios are named relative to the
**scenarios root** that every worker shares (a checkout's ``scenarios/``); a worker refuses a
scenario whose file differs from the submitter's (sha256).
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from testbed._digest import file_sha256
from testbed.fleet.engine import FleetInputError, queue_name

CONSTRAINT_KEYS = ("provider", "route", "exit")
MATRIX_KEYS = {"scenarios", "builds", "vantages", "constraints", "repeat"}


@dataclass(frozen=True)
class JobSpec:
    """One run to make somewhere."""

    job_id: str
    scenario: str  # path relative to the scenarios root
    sha256: str  # of the scenario file as submitted
    provider: str  # the scenario's provider (a constraint, if given, must equal it)
    route: str | None = None
    exit: str | None = None
    build: str | None = None  # build profile every client gets (relative to the scenario)
    boxes: tuple[str, ...] = ()  # vagrant boxes the scenario's clients need
    nightly: bool = False
    label: str = ""  # the matrix cell, for people

    @property
    def queue(self) -> str:
        return queue_name(self.provider, self.route, self.exit)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"boxes": list(self.boxes)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        return cls(**(data | {"boxes": tuple(data.get("boxes", ()))}))

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)


def new_job_id() -> str:
    return secrets.token_hex(6)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise FleetInputError(f"{path}: not under the scenarios root {root} (workers find "
                              "scenarios there; use --scenarios-root)") from None


def _constraints(raw: Any, where: str) -> dict[str, str | None]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or set(raw) - set(CONSTRAINT_KEYS):
        raise FleetInputError(f"{where}: constraints are a mapping of "
                              f"{', '.join(CONSTRAINT_KEYS)}; got {raw!r}")
    return {k: (None if v is None else str(v)) for k, v in raw.items()}


def for_scenario(path: Path, root: Path, constraints: dict[str, str | None] | None = None,
                 build: str | None = None, nightly: bool = False, label: str = "") -> JobSpec:
    """The job that runs scenario file ``path`` once."""
    from testbed.scenario import load_scenario

    scenario = load_scenario(path)
    c = constraints or {}
    if c.get("provider") not in (None, scenario.provider):
        raise FleetInputError(f"{path}: constraint provider: {c['provider']}, but the scenario "
                              f"runs on provider {scenario.provider}")
    if build is not None and not (scenario.path.parent / build).is_file():
        raise FleetInputError(f"{path}: build {build}: no such build profile beside the "
                              "scenario")
    boxes = sorted({str((cl.vm or {}).get("box")) for cl in scenario.clients.values()
                    if cl.vm and (cl.vm or {}).get("box")})
    rel = _relative(scenario.path, root)
    return JobSpec(job_id=new_job_id(), scenario=rel, sha256=file_sha256(scenario.path),
                   provider=scenario.provider, route=c.get("route"), exit=c.get("exit"),
                   build=build, boxes=tuple(boxes), nightly=nightly,
                   label=label or rel + (f" build={build}" if build else ""))


def load_matrix(path: Path, root: Path,
                extra: dict[str, str | None] | None = None) -> list[JobSpec]:
    """The jobs of matrix file ``path`` (FleetInputError naming the file on a bad one)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise FleetInputError(f"{path}: cannot read the matrix: {e}") from e
    if not isinstance(data, dict) or "scenarios" not in data:
        raise FleetInputError(f"{path}: a matrix is a mapping with 'scenarios:' (and "
                              "optionally builds, vantages, constraints, repeat)")
    unknown = set(data) - MATRIX_KEYS
    if unknown:
        raise FleetInputError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (known: "
                              f"{', '.join(sorted(MATRIX_KEYS))})")
    scenarios = data["scenarios"]
    builds = data.get("builds") or [None]
    vantages = data.get("vantages") or [{}]
    repeat = data.get("repeat", 1)
    if not isinstance(scenarios, list) or not scenarios:
        raise FleetInputError(f"{path}: scenarios: a non-empty list of scenario files")
    if not isinstance(builds, list) or not isinstance(vantages, list):
        raise FleetInputError(f"{path}: builds and vantages are lists")
    if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= 1000:
        raise FleetInputError(f"{path}: repeat: a whole number from 1 to 1000")
    base = _constraints(data.get("constraints"), str(path)) | (extra or {})
    jobs = []
    for scen, build, vantage, n in itertools.product(scenarios, builds, vantages,
                                                     range(repeat)):
        v = _constraints(vantage, f"{path}: vantage")
        label = " ".join(filter(None, [str(scen), f"build={build}" if build else "",
                                       *(f"{k}={x}" for k, x in v.items() if x),
                                       f"#{n + 1}" if repeat > 1 else ""]))
        jobs.append(for_scenario(path.parent / str(scen), root, base | v,
                                 None if build is None else str(build), label=label))
    return jobs
