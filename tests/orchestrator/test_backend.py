"""Calls into the roles: a timeout, the expected state, a fallback (``orchestrator.backend``)."""

from __future__ import annotations

import threading
import time

import pytest

from testbed._errors import LabError
from testbed.orchestrator.backend import BackendTimeout, Pending, call, unwind


def test_a_call_returns_its_value():
    assert call("two", lambda: 2, timeout=1, expect=lambda v: None) == 2


def test_a_call_that_hangs_times_out_and_falls_back():
    release, fell_back = threading.Event(), []
    t0 = time.monotonic()
    with pytest.raises(BackendTimeout, match=r"the gateway did not finish within 0\.2 s"):
        call("the gateway", lambda: release.wait(5), timeout=0.2,
             fallback=lambda: fell_back.append(True))
    assert time.monotonic() - t0 < 1 and fell_back == [True]
    assert unwind(0.05) == ["the gateway"]  # teardown is told what still runs
    release.set()
    assert unwind(1) == []


def test_an_unexpected_state_is_an_error_naming_the_call():
    with pytest.raises(LabError, match="guest a: the agent is not ok"):
        call("guest a", lambda: {"ok": False}, timeout=1,
             expect=lambda v: None if v["ok"] else "the agent is not ok")


def test_the_calls_own_error_reaches_the_caller_after_the_fallback():
    order: list[str] = []

    def boom() -> None:
        raise LabError("ip link failed")

    with pytest.raises(LabError, match="ip link failed"):
        call("plug", boom, timeout=1, fallback=lambda: order.append("fallback"))
    assert order == ["fallback"]


def test_a_failing_fallback_does_not_hide_the_error():
    def fallback() -> None:
        raise RuntimeError("fallback broke")

    with pytest.raises(BackendTimeout):
        call("x", lambda: time.sleep(1), timeout=0.05, fallback=fallback)


def test_agent_calls_are_not_awaited_by_teardown():
    p = Pending("an agent action", lambda: time.sleep(0.3), awaited=False)
    assert "an agent action" not in unwind(0.01)
    p.result(2)


def test_a_later_run_does_not_wait_for_an_earlier_runs_hung_call():
    release = threading.Event()
    with pytest.raises(BackendTimeout):
        call("run 1's guest", lambda: release.wait(5), timeout=0.05)
    assert unwind(0.05) == ["run 1's guest"]  # run 1's teardown is told
    t0 = time.monotonic()
    assert unwind(1) == []  # run 2's teardown: not its call, no wait
    assert time.monotonic() - t0 < 0.5
    release.set()
