"""The orchestrator's phases, timeouts, failure paths and teardown, on the in-tree fakes (a fake
gateway, guest pool and agents): no root, no lab, a run in about a second. Each test checks
what a user would see: the manifest's phases and status, events, verdicts, exit codes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

import pytest

from testbed import cli
from testbed._digest import file_sha256
from testbed.orchestrator.backend import Timeouts
from testbed.orchestrator.run import run_scenario
from testbed.provider import POOLS, PoolKind
from testbed.provider.fakes import FakeAgent, FakeGateway, done, failed
from testbed.scenario import load_scenario

from .support import FAST, PHASES, SEED, Roles, by_action, events, manifest, on, run


def test_a_run_goes_through_every_phase_and_tears_down(tmp_path):
    roles = Roles()
    outcome = run(tmp_path, roles)
    m = manifest(outcome)
    assert outcome.status == m["status"] == "complete"
    assert list(m["phases"]) == PHASES
    assert all(p["status"] == "ok" for p in m["phases"].values())
    assert m["lab"] == {"tag": "fa4e"}
    assert m["guests"] == {"regular": "10.77.0.10", "tom-en": "10.77.0.11",
                           "tom-zh": "10.77.0.12", "control": "10.77.0.13",
                           "cn-visitor": "10.77.0.14"}
    assert m["capture"]["complete"]  # tcpdump (the stand-in) was stopped cleanly
    # the lab's map, checked as the run started: the digest of the run's copy (an analysis
    # reads that copy without checking it again)
    assert m["internet"]["sha256"] == file_sha256(outcome.run.path / "lab" / "internet.yaml")
    steps = [s for session in load_scenario(SEED).sessions for s in session.steps]
    assert len(events(outcome)) == len(steps)
    assert all(e["outcome"] == "ok" for e in events(outcome))
    assert (outcome.run.path / "screenshots" / "tom-zh" / "chat_absent.png").is_file()
    # the report, written while the run is still analyzing, shows the status it ends with
    assert "<dt>Run status</dt><dd>complete</dd>" in (outcome.run.path / "report.html").read_text()
    verdicts = {v.id: v.status for v in outcome.verdicts}
    # the screens: tom-zh's did not show the message, but with nothing captured of either
    # party nothing shows it was kept out rather than never sent; control's showed it
    assert verdicts["tom-user-never-sees-censored-word"] == "inconclusive"
    assert verdicts["regular-peer-sees-censored-word"] == "pass"
    assert verdicts["tom-en-reaches-country-CN"] == "inconclusive"   # an empty capture
    # ... says nothing about where a chat went, either way
    assert verdicts["chat-with-tom-user-reaches-china"] == "inconclusive"
    assert verdicts["chat-with-regular-peer-stays-out-of-china"] == "inconclusive"
    assert [p[2] for p in roles.gateway.plugs] == [f"fake-{v}" for v in m["guests"]]
    assert roles.torn_down()


def test_a_watch_keeps_its_window_beside_other_variants_steps(tmp_path):
    def watch(steps: list[dict[str, Any]]) -> dict[str, Any]:
        time.sleep(0.4)
        return done(steps)

    outcome = run(tmp_path, Roles({"tom-zh": on("tom-zh", "chat_absent", watch)}))
    absent = by_action(outcome, "tom-zh", "chat_absent")[0]
    assert absent["end"] - absent["start"] >= 0.4  # the whole window
    control = [e for e in events(outcome) if e["session"] == "chat-control"
               and e["variant"] != "tom-zh"]
    assert min(e["start"] for e in control) < absent["end"]  # overlapped by others' steps
    tom_zh = [e for e in events(outcome) if e["variant"] == "tom-zh"]
    assert all(e["end"] <= absent["start"] for e in tom_zh if e["action"] != "chat_absent")
    assert outcome.status == "complete"


def test_a_failed_step_skips_the_variants_later_steps_and_exits_1(tmp_path, monkeypatch,
                                                                  capsys):
    roles = Roles({"regular": on("regular", "login",
                                 lambda s: failed(s, "image status-online.png not found"))})
    monkeypatch.setitem(POOLS, "lab", roles.kind())
    code = cli.main(["run", str(SEED), "--results", str(tmp_path / "results")])
    assert code == 1
    out = capsys.readouterr().out
    assert "regular: login FAILED: image status-online.png not found" in out
    [path] = (tmp_path / "results" / "skype-2013-lab").glob("2*")
    evs = [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines()]
    login = next(e for e in evs if e["variant"] == "regular" and e["action"] == "login")
    assert login["outcome"] == "failed" and "failure" in login["screenshots"]
    later = [e for e in evs if e["variant"] == "regular" and e["start"] > login["start"]]
    assert later and all(e["outcome"] == "skipped" and "'login' failed earlier" in e["error"]
                         for e in later)
    assert all(e["outcome"] == "ok" for e in evs if e["variant"] == "tom-en")
    m = json.loads((path / "manifest.json").read_text())
    assert m["status"] == "complete" and m["phases"]["sessions"]["status"] == "ok"
    verdicts = json.loads((path / "verdicts.json").read_text())
    chats = {v["id"]: v for v in verdicts["verdicts"]} if isinstance(verdicts, dict) else {
        v["id"]: v for v in verdicts}
    assert chats["regular-peer-sees-censored-word"]["status"] == "inconclusive"
    assert roles.torn_down()


def test_a_step_that_never_answers_times_out(tmp_path):
    release = threading.Event()

    def hang(steps: list[dict[str, Any]]) -> dict[str, Any]:
        release.wait(10)
        return done(steps)

    t0 = time.monotonic()
    outcome = run(tmp_path, Roles({"tom-en": on("tom-en", "about", hang)}),
                  Timeouts(network=5, capture=10, guest=2, action=0.3, unwind=1))
    release.set()
    assert time.monotonic() - t0 < 8
    about = by_action(outcome, "tom-en", "about")[0]
    assert about["outcome"] == "failed"
    assert "timed out" in about["error"] and "0.3 s" in about["error"]
    assert by_action(outcome, "tom-en", "answer")[0]["outcome"] == "skipped"
    assert by_action(outcome, "tom-zh", "about")[0]["outcome"] == "ok"
    assert outcome.status == "complete"


def test_a_guest_whose_agent_never_answers_fails_the_run(tmp_path):
    roles = Roles({"tom-zh": FakeAgent("tom-zh", ready=False)})
    outcome = run(tmp_path, roles)
    m = manifest(outcome)
    assert outcome.status == m["status"] == "failed"
    assert m["phases"]["guests"]["status"] == "failed"
    assert "tom-zh" in m["error"] and "not ready" in m["error"]
    assert "sessions" not in m["phases"]
    assert m["phases"]["capture-stop"]["status"] == m["phases"]["teardown"]["status"] == "ok"
    assert not events(outcome)
    assert outcome.verdicts and all(v.status == "inconclusive" for v in outcome.verdicts)
    assert (outcome.run.path / "report.html").is_file()  # it says what is missing
    assert roles.torn_down()


def test_a_guest_that_never_comes_up_times_out_and_is_torn_down(tmp_path):
    roles = Roles(hang=("control",))
    t0 = time.monotonic()
    outcome = run(tmp_path, roles, Timeouts(network=5, capture=10, guest=0.5, action=2,
                                           unwind=0.5))
    assert time.monotonic() - t0 < 8
    m = manifest(outcome)
    assert m["status"] == "failed"
    assert "guest control (fake) did not finish within 0.5 s" in m["error"]
    assert sorted(roles.pool.started) == sorted(
        ["regular", "tom-en", "tom-zh", "control", "cn-visitor"])
    assert roles.torn_down()


def test_guests_of_a_serial_pool_start_one_after_another(tmp_path):
    roles = Roles(concurrent=False, fail={"tom-en": "no such box"})
    outcome = run(tmp_path, roles)
    assert roles.pool.started == ["regular", "tom-en"]  # none after the failed one
    assert "no such box" in manifest(outcome)["error"]
    assert roles.torn_down()


def test_a_gateway_that_fails_still_tears_everything_down(tmp_path):
    class Broken(FakeGateway):
        def start(self) -> Any:
            raise RuntimeError("no bridge") from None

    roles = Roles()
    kind = PoolKind(make=roles._pool,
                    gateway=lambda run, net: setattr(roles, "gateway", Broken(run)) or
                    roles.gateway)  # type: ignore[arg-type,return-value]
    with pytest.raises(RuntimeError):  # a bug: it propagates, after teardown
        run_scenario(load_scenario(SEED), tmp_path / "r", progress=lambda m: None,
                     state_dir=tmp_path / "ca", kind=kind, timeouts=FAST)
    assert roles.pool.teardowns == roles.gateway.teardowns == 1


def test_ctrl_c_during_sessions_tears_down_and_exits_130(tmp_path, monkeypatch, capsys):
    def interrupt(steps: list[dict[str, Any]]) -> dict[str, Any]:
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does: the main thread is told
        time.sleep(0.2)
        return done(steps)

    roles = Roles({"regular": on("regular", "call", interrupt)})
    monkeypatch.setitem(POOLS, "lab", roles.kind())
    code = cli.main(["run", str(SEED), "--results", str(tmp_path / "results")])
    assert code == 130
    assert "interrupted; the lab was torn down" in capsys.readouterr().err
    [path] = (tmp_path / "results" / "skype-2013-lab").glob("2*")
    m = json.loads((path / "manifest.json").read_text())
    assert m["status"] == "interrupted"
    assert m["phases"]["sessions"]["status"] == "failed"
    assert m["phases"]["teardown"]["status"] == "ok" and m["capture"]["complete"]
    evs = [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines()]
    assert not [e for e in evs if e["session"] in ("hang_up", "chat-tom", "chat-control")]
    assert roles.torn_down()


def test_a_provider_that_cannot_run_here_starts_nothing(tmp_path):
    kind = PoolKind(make=Roles()._pool, unavailable=lambda s: ["a hypervisor: install one"])
    from testbed._errors import ProviderUnavailable

    with pytest.raises(ProviderUnavailable, match="a hypervisor: install one"):
        run_scenario(load_scenario(SEED), tmp_path / "r", kind=kind)
    assert not (tmp_path / "r").exists()
