"""Signals during a run, on the in-tree fakes: Ctrl-C (and SIGTERM) again and again while the
lab comes down, Ctrl-C during a long step, during the analysis, and SIGKILL. Each case checks
that the lab is down (or, where it cannot be, that the user is told what remains), what the
CLI says, and what the manifest says."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from testbed import cli
from testbed.capture import Tcpdump
from testbed.provider import POOLS, Context, Gateway, PoolKind
from testbed.provider.fakes import FakeGateway, FakePool

from .support import ROOT, SEED, Roles

SIGNALS = {"ctrl-c": signal.SIGINT, "sigterm": signal.SIGTERM, "sighup": signal.SIGHUP}


class Signalling(Roles):
    """Fakes that receive ``signals`` while the lab comes down, at ``where``; the gateway
    reports ``left`` as still there after its teardown."""

    def __init__(self, where: str, signals: list[int], left: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.where, self.signals, self.left = where, signals, left

    def fire(self, here: str) -> None:
        if here == self.where:
            for s in self.signals:
                os.kill(os.getpid(), s)
                time.sleep(0.05)  # each delivered on its own

    def kind(self) -> PoolKind:
        roles = self

        class Pool(FakePool):
            def teardown(self) -> None:
                roles.fire("pool")
                super().teardown()

        class Gw(FakeGateway):
            def teardown(self) -> None:
                roles.fire("gateway")
                super().teardown()

            def leftovers(self) -> list[str]:
                return list(roles.left)

        def gateway(run: Path, internet: Any) -> Gateway:
            self.gateway = Gw(run, internet)
            return self.gateway

        def pool(ctx: Context, gw: Gateway) -> FakePool:
            self.pool = Pool(gw, self.agents)
            return self.pool

        return PoolKind(make=pool, gateway=gateway)


def _cli_run(tmp_path: Path, monkeypatch: Any, roles: Roles) -> tuple[int, Path]:
    monkeypatch.setitem(POOLS, "lab", roles.kind())
    code = cli.main(["run", str(SEED), "--results", str(tmp_path / "results")])
    [run] = (tmp_path / "results" / "skype-2013-lab").glob("2*")
    return code, run


@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("name", list(SIGNALS))
@pytest.mark.parametrize("where", ["capture", "pool", "gateway"])
def test_signals_while_the_lab_comes_down_let_it_finish(tmp_path, monkeypatch, capfd, where,
                                                         name, count):
    roles = Signalling(where, [SIGNALS[name]] * count)
    stop = Tcpdump.stop

    def stop_and_signal(self: Tcpdump, timeout: float = 10.0) -> Any:
        roles.fire("capture")
        return stop(self, timeout)

    monkeypatch.setattr(Tcpdump, "stop", stop_and_signal)
    code, run = _cli_run(tmp_path, monkeypatch, roles)
    err = capfd.readouterr().err
    assert code == 130, err
    assert "Traceback" not in err
    assert roles.torn_down(), "teardown must finish whatever signals arrive"
    assert err.count("still tearing the lab down") == count
    assert err.strip().splitlines()[-1].startswith("testbed: interrupted; the lab was torn down")
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "interrupted"
    assert m["phases"]["teardown"]["status"] == "ok" and m["capture"]["complete"]
    assert not [p for p, r in m["phases"].items() if r["status"] == "running"]


@pytest.mark.parametrize("left", [("netns tbed-fa4e-gw",),
                                  ("netns tbed-fa4e-0", "process 4242", "link tbfa4em0")])
def test_an_interrupted_run_says_what_remains(tmp_path, monkeypatch, capfd, left):
    roles = Signalling("pool", [signal.SIGINT, signal.SIGINT], left)
    code, _ = _cli_run(tmp_path, monkeypatch, roles)
    err = capfd.readouterr().err
    assert code == 130
    last = err.strip().splitlines()[-1]
    assert "the lab was torn down" not in err
    assert f"NOT fully torn down: {len(left)} object(s) remain" in last
    assert all(obj in last for obj in left) and "testbed lab cleanup" in last


def _spawn(tmp_path: Path, variant: str, action: str) -> tuple[subprocess.Popen[str], Path]:
    started = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-m", "tests.orchestrator.fault_run",
                             str(tmp_path / "results"), variant, action, str(started)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # its group: see _reap
    deadline = time.monotonic() + 60
    while not started.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the long step never started"
        time.sleep(0.05)
    return proc, started


def _reap(proc: subprocess.Popen[str]) -> None:
    """What a SIGKILLed run left running (its fake tcpdump and mitmdump, orphaned as a real
    SIGKILL orphans the real ones): gone with the run's process group after the test."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


# a step of a parallel session, of a sequential one, and a watch (runs beside others' steps)
LONG_STEPS = [("regular", "login"), ("tom-en", "about"), ("regular", "hang_up"),
              ("tom-zh", "chat_absent")]


@pytest.mark.parametrize(("variant", "action"), LONG_STEPS)
def test_ctrl_c_during_a_long_step_is_down_within_seconds(tmp_path, variant, action):
    proc, _ = _spawn(tmp_path, variant, action)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 130, err
    assert took < 5, f"{took:.1f} s from Ctrl-C to exit (the step would take 60 s)"
    assert "Traceback" not in err
    assert "interrupted; the lab was torn down" in err
    [run] = (tmp_path / "results" / "skype-2013-lab").glob("2*")
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["phases"]["teardown"]["status"] == "ok"


@pytest.mark.parametrize(("variant", "action"), LONG_STEPS[:2])
def test_a_sigkilled_run_is_abandoned_for_history_and_the_next_run(tmp_path, monkeypatch,
                                                                    capfd, request, variant,
                                                                    action):
    proc, _ = _spawn(tmp_path, variant, action)
    proc.kill()
    proc.communicate(timeout=30)
    request.addfinalizer(lambda: _reap(proc))
    [run] = (tmp_path / "results" / "skype-2013-lab").glob("2*")
    raw = json.loads((run / "manifest.json").read_text())
    assert raw["status"] == "running" and raw["process"]["pid"] == proc.pid
    from testbed.history.diff import load_run

    assert load_run(run).status == "abandoned"  # what `testbed history` lists
    monkeypatch.setitem(POOLS, "lab", Roles().kind())
    cli.main(["run", str(SEED), "--results", str(tmp_path / "results")])
    out = capfd.readouterr().out
    assert f"earlier run {run.name} was abandoned" in out
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "abandoned" and str(proc.pid) in m["error"]


@pytest.mark.parametrize("phase", ["analyze", "verdicts", "report"])
def test_ctrl_c_during_analysis_says_so_and_analyze_finishes_it(tmp_path, monkeypatch, capfd,
                                                                phase):
    from testbed.orchestrator import run as orchestrator

    target = {"analyze": "analyze_run", "verdicts": "check_run", "report": "build_report"}
    real = getattr(orchestrator, target[phase])

    def interrupted(*args: Any, **kw: Any) -> Any:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
        return real(*args, **kw)

    monkeypatch.setattr(orchestrator, target[phase], interrupted)
    code, run = _cli_run(tmp_path, monkeypatch, Roles())
    err = capfd.readouterr().err
    assert code == 130 and "Traceback" not in err
    assert f"interrupted during {phase}; the lab was torn down" in err
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "interrupted"
    assert f"interrupted during {phase}" in m["error"] and "testbed analyze" in m["error"]
    assert m["phases"][phase]["status"] == "failed"
    monkeypatch.undo()
    assert cli.main(["analyze", str(run)]) == 1  # the fakes' verdicts: inconclusive
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "complete" and "error" not in m and "lab_status" not in m
    assert (run / "verdicts.json").is_file() and (run / "report.html").is_file()
