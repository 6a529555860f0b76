"""The orchestrator: one run of a scenario, stage by stage.

    network → capture start → guests → sessions → capture stop → teardown → analyze → verdicts

Cross-cutting work lives here, not in the roles: every phase is timed and its status kept in
``manifest.json``; every call into the gateway, the guest pool or an agent has a timeout and
an expected state (``backend``); capture is started before the first guest and stopped
(cleanly) before teardown; teardown — pool first, then gateway — runs whatever happens
(failure, SIGTERM or Ctrl-C), and the results of a crashed run stay readable. Nothing here
knows which provider runs: the scenario's ``provider`` picks a pool from
``testbed.provider.POOLS``.
"""

from __future__ import annotations

import contextlib
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

from testbed._digest import file_sha256
from testbed._errors import LabError, ProviderUnavailable, TestbedError
from testbed.capture import CaptureStats, Mitmdump, Tcpdump
from testbed.lab.internet_map import load_internet
from testbed.orchestrator.analyze import Analysis, analyze_run
from testbed.orchestrator.backend import DEFAULT, Pending, Timeouts, call, unwind
from testbed.orchestrator.drive import Driver
from testbed.orchestrator.guard import (
    FULL,
    Ledger,
    RunFailed,
    RunInterrupted,
    deferred_signals,
    describe,
    discard_partial_analysis,
    disk_full,
    lab_state_line,
)
from testbed.orchestrator.rundir import RunDir, mark_abandoned
from testbed.provider import Context, Gateway, GuestHandle, GuestPool, PoolKind, get_pool
from testbed.report import build_report
from testbed.run import files as f
from testbed.run.liveness import Owner
from testbed.run.vantage import RouteDown
from testbed.scenario import Scenario
from testbed.verdicts import Verdict
from testbed.verdicts.check import check_run


@dataclass
class RunOutcome:
    run: RunDir
    analysis: Analysis | None
    verdicts: list[Verdict]
    status: str

    @property
    def all_passed(self) -> bool:
        return self.status == "complete" and bool(self.verdicts) and all(
            v.status == "pass" for v in self.verdicts)


def tool_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("testbed", "mitmproxy", "geoip2", "maxminddb", "pyautogui", "pytest",
                "python-vagrant"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        res = subprocess.run(["tcpdump", "--version"], capture_output=True, text=True, timeout=5)
        out["tcpdump"] = (res.stdout or res.stderr).splitlines()[0]
    return out


class Phases:
    """Times each phase and records it in the manifest as it goes. The records are written
    through the run's ``Ledger``: a write that fails never stops a phase (while ``strict``, it
    fails the phase before its work starts, so a run on a full disk goes to teardown)."""

    def __init__(self, run: RunDir, progress: Callable[[str], None], ledger: Ledger) -> None:
        self.run, self.progress, self.ledger = run, progress, ledger
        self.records: dict[str, dict[str, Any]] = {}
        self.t0 = time.monotonic()
        self.strict = True
        self.current = ""

    def save(self, **fields: Any) -> bool:
        return self.ledger.write(lambda: self.run.update_manifest(phases=self.records, **fields))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.time()
        self.records[name] = {"start": start, "status": "running"}
        self.current = name
        saved = self.save()
        self.progress(f"[{time.monotonic() - self.t0:5.1f}s] {name}")
        try:
            if not saved and self.strict:
                raise RunFailed(f"the run cannot keep its records: {self.ledger.summary}")
            yield
        except BaseException as e:
            self.records[name].update(end=time.time(), status="failed",
                                      error=str(e) or type(e).__name__)
            raise
        else:
            self.records[name].update(end=time.time(), status="ok")
        finally:
            self.records[name]["seconds"] = round(self.records[name]["end"] - start, 3)
            self.save()


class _Interrupted(KeyboardInterrupt):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted(f"interrupted by signal {signal.Signals(signum).name}")


def _healthy(guest: GuestHandle) -> str | None:
    """The state a started guest must be in: its agent answers."""
    return None if guest.agent.health().get("ok") else f"the agent of {guest.variant} is not ok"


def start_guests(pool: GuestPool, variants: list[str], trust: Path | None,
                 timeout: float) -> dict[str, GuestHandle]:
    """Every guest up with its agent answering; at the same time where the pool allows."""
    def start(i: int, variant: str) -> Pending[GuestHandle]:
        return Pending(f"guest {variant} ({pool.name})",
                       lambda: pool.start_guest(variant, i, trust), _healthy)

    guests: dict[str, GuestHandle] = {}
    if pool.concurrent:
        pending = [start(i, v) for i, v in enumerate(variants)]
        deadline = time.monotonic() + timeout
        for p, v in zip(pending, variants, strict=True):
            guests[v] = p.result(max(0.0, deadline - time.monotonic()), limit=timeout)
    else:
        for i, v in enumerate(variants):
            guests[v] = start(i, v).result(timeout)
    return guests


def run_scenario(scenario: Scenario, results: Path, progress: Callable[[str], None] = print,
                 state_dir: Path | None = None, kind: PoolKind | None = None,
                 timeouts: Timeouts = DEFAULT) -> RunOutcome:
    """Run ``scenario`` end to end; returns the outcome (never raises for a failed step).
    ``kind``: the roles to run on (default: the scenario's provider, from the registry)."""
    kind = kind or get_pool(scenario.provider)
    missing = kind.unavailable(scenario)
    if missing:
        raise ProviderUnavailable(
            f"{scenario.path} cannot run on this machine; nothing was started. "
            f"Missing ({len(missing)}):\n" + "\n".join(missing))
    if scenario.internet_path is None:
        raise LabError(f"{scenario.path}: provider {scenario.provider} needs a lab.internet "
                       "data file")
    internet = load_internet(scenario.internet_path)
    results = results.resolve()
    run = RunDir.create(results, scenario.name)
    run.reserve()
    shutil.copyfile(scenario.path, run.file(f.SCENARIO))
    shutil.copyfile(internet.path, run.file(f.INTERNET))
    canary = f"CANARY-{secrets.token_hex(6)}"
    run.update_manifest(
        testbed_run=1, run_id=run.run_id, status="running", started=time.time(),
        scenario={"name": scenario.name, "path": str(scenario.path), "sha256": scenario.sha256},
        internet={"name": internet.name, "path": str(internet.path),
                  "sha256": file_sha256(run.file(f.INTERNET))},
        provider=scenario.provider, canary=canary, tools=tool_versions(),
        expectations=[e.to_json() for e in scenario.expectations],
        process=Owner.me().to_json(),
    )
    gateway: Gateway = kind.gateway(run.path, internet)
    gateway.plan_routes({v: scenario.route_of(v) for v in scenario.clients})
    gateway.on_route_down = lambda down: _route_down(run, progress, down)
    progress(f"run {run.path} (lab tag {gateway.tag})")
    for earlier in mark_abandoned(results / scenario.name, run.path):
        progress(f"earlier run {earlier.name} was abandoned (its process is gone); "
                 "`testbed lab cleanup` removes what it left")
    pool: GuestPool = kind.make(Context(run.path, scenario, results, progress), gateway)
    ledger = Ledger()
    phases = Phases(run, progress, ledger)
    status = "complete"
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        status = _lab_part(scenario, run, kind, gateway, pool, phases, canary, progress,
                           state_dir or results / ".lab-ca", timeouts)
        return _analysis_part(run, phases, status, progress)
    finally:
        run.release_reserve()
        for s, h in old.items():
            signal.signal(s, h)


def _lab_part(scenario: Scenario, run: RunDir, kind: PoolKind, gateway: Gateway,
              pool: GuestPool, phases: Phases, canary: str, progress: Callable[[str], None],
              ca_dir: Path, timeouts: Timeouts) -> str:
    """Network to teardown; returns the status. Teardown runs whatever happens, with signals
    held and with no write it depends on; it raises (after teardown) when the run was
    interrupted or could not keep its records."""
    ledger = phases.ledger
    status = "complete"
    tcpdump = mitm = None
    stats = CaptureStats()
    left: list[str] = []
    held: list[int] = []
    driver: Driver | None = None
    try:
        with phases.phase("network"):
            handle = call("the gateway", gateway.start, timeout=timeouts.network)
            call(f"the {pool.name} pool's set-up", pool.prepare, timeout=timeouts.network)
            run.update_manifest(infrastructure=handle.infrastructure,
                                lab={"tag": gateway.tag},
                                vantage={v: x.to_json() for v, x in gateway.vantages().items()})
        with phases.phase("capture-start"):
            tcpdump = Tcpdump(gateway, handle.capture_interface, run.pcap,
                              run.file(f.TCPDUMP_LOG))
            tcpdump.start(timeouts.capture)  # each waits for 'listening' itself;
            mitm = Mitmdump(gateway, handle.mitm_port, run.file(f.FLOWS), ca_dir,
                            run.file(f.MITMDUMP_LOG))
            mitm.start(timeouts.capture)  # capture-stop stops what did start
        with phases.phase("guests"):
            guests = start_guests(pool, list(scenario.clients), mitm.ca_cert,
                                  timeouts.guest or pool.start_timeout)
            run.update_manifest(guests={v: g.address for v, g in guests.items()})
            mitm.pass_through(clients=[g.address for v, g in guests.items()
                                       if scenario.clients[v].tls == "passthrough"])
        driver = Driver(scenario, guests, run, canary, progress, timeouts)
        with phases.phase("sessions"):
            driver.drive()
    except (TestbedError, KeyboardInterrupt, OSError) as e:
        status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        with deferred_signals(held):  # from here on, signals wait for the lab to be down
            if driver is not None:
                driver.cancel()  # the actions in flight stop (a few seconds at most)
            if isinstance(e, OSError) and e.errno in FULL:
                ledger.note(e)  # the run's records are what failed: said once the lab is down
            error = describe(e) if isinstance(e, OSError) else str(e) or type(e).__name__
            progress(f"run {status}: {error}")
            ledger.write(lambda: run.update_manifest(error=error))
    finally:
        with deferred_signals(held):  # a second Ctrl-C does not cut teardown short
            phases.strict = False
            try:
                with phases.phase("capture-stop"):
                    if mitm is not None:
                        mitm.stop()
                    if tcpdump is not None:
                        stats = tcpdump.stop()
                    ledger.write(lambda: run.update_manifest(capture=stats.to_json()))
            finally:
                with phases.phase("teardown"):
                    still = unwind(timeouts.unwind)  # calls still making things: let them end
                    if still:
                        progress(f"teardown while still running: {', '.join(still)}")
                    try:
                        pool.teardown()
                    finally:
                        gateway.teardown()
                left = _leftovers(gateway)
    if held and status != "interrupted":  # the first Ctrl-C came during teardown
        status = "interrupted"
        phases.save(error="interrupted during teardown")
    if left:
        progress(lab_state_line(left))
    if ledger.problems:  # the phases again too: their own writes may have failed
        run.release_reserve()  # room for these last words on a full disk
        status = "interrupted" if status == "interrupted" else "failed"
        phases.save(status=status, error=ledger.summary)
        if status == "failed":
            raise RunFailed(f"{run.path}: failed: {ledger.summary}; {lab_state_line(left)}")
    else:
        phases.save(status=status)
    if status == "interrupted":
        raise RunInterrupted(run.path, left)
    return status


def _route_down(run: RunDir, progress: Callable[[str], None], down: RouteDown) -> None:
    """A route died (the gateway's watch): its packets are dropped already; say when."""
    progress(down.sentence())
    for event in down.events():
        run.event(**event.to_json())


def _leftovers(gateway: Gateway) -> list[str]:
    try:
        return gateway.leftovers()
    except Exception as e:  # a check that cannot look says so
        return [f"(could not check what remains: {e})"]


def _analysis_part(run: RunDir, phases: Phases, status: str,
                   progress: Callable[[str], None]) -> RunOutcome:
    """Analyze, verdicts, report. While they run the status is ``analyzing`` (and the lab's
    own status is kept); interrupted, it says so, and ``testbed analyze RUN`` finishes it."""
    ledger = phases.ledger
    if not ledger.write(lambda: run.update_manifest(status="analyzing", lab_status=status)):
        raise RunFailed(f"{run.path}: failed: {ledger.summary}; the lab was torn down")
    analysis = None
    verdicts: list[Verdict] = []
    phases.strict = True
    try:
        if run.pcap.exists():
            with phases.phase("analyze"):
                analysis = analyze_run(run)
            with phases.phase("verdicts"):
                verdicts = check_run(run.path)
        run.update_manifest(finished=time.time())
        with phases.phase("report"):  # also for a run without capture: it says what is missing
            build_report(run.path, status=status)
    except KeyboardInterrupt:
        during = f" during {phases.current}"
        phases.save(status="interrupted",
                    error=f"interrupted{during}: `testbed analyze {run.path}` finishes it")
        raise RunInterrupted(run.path, [], during) from None
    except (OSError, TestbedError) as e:
        full = disk_full(e)
        if full is None and not isinstance(e, RunFailed):  # not the disk: the phase says it
            phases.save(status=status, lab_status=None)
            raise
        if full is not None:
            ledger.note(full)
        discard_partial_analysis(run.path)  # no half analysis; and room for the manifest
        run.release_reserve()
        phases.save(status="failed", error=f"{phases.current}: {ledger.summary}")
        raise RunFailed(f"{run.path}: failed during {phases.current}: {ledger.summary}; "
                        "the lab was torn down") from None
    ledger.write(lambda: run.update_manifest(status=status, lab_status=None))
    return RunOutcome(run=run, analysis=analysis, verdicts=verdicts, status=status)


__all__ = ["RunOutcome", "run_scenario", "sys"]
