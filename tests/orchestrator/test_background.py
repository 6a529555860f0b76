"""`Background`: work in a forked child gives what it gives in this process, errors are
raised here as without a child, and no child outlives its `with` block."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from testbed.orchestrator import background
from testbed.orchestrator.background import Background

# the threads other tests left behind make Python warn at fork (see `single_threaded`)
pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")


@pytest.fixture
def single_threaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads other tests of the session left behind would (rightly) keep `Background` from
    forking; these tests only fork for a tiny callable, so they may ignore them."""
    monkeypatch.setattr(background.threading, "active_count", lambda: 1)


def _same(x: object) -> object:
    return x


@pytest.mark.usefixtures("single_threaded")
def test_the_work_runs_in_a_child_and_its_result_comes_back() -> None:
    with Background(lambda: {"pid": os.getpid(), "items": [1, 2.5, "x"]}, _same, _same) as bg:
        got = bg.result()
    assert got["items"] == [1, 2.5, "x"], "the result should come back through the pipe intact"
    assert got["pid"] != os.getpid(), "the work should have run in a child process"


@pytest.mark.usefixtures("single_threaded")
def test_a_failing_child_is_redone_here_and_its_error_raised_here(tmp_path: Path) -> None:
    marker = tmp_path / "runs"

    def work() -> int:
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")
        raise ValueError("no such flow file")

    with Background(work, _same, _same) as bg, pytest.raises(ValueError, match="no such flow"):
        bg.result()
    pids = marker.read_text().split()
    assert len(pids) == 2 and pids[1] == str(os.getpid()), \
        "a failed child's work should run once more in this process, raising its error here"


def test_with_other_threads_running_the_work_runs_here() -> None:
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        with Background(os.getpid, _same, _same) as bg:
            assert bg.result() == os.getpid(), "no fork while other threads run"
    finally:
        stop.set()
        t.join()


@pytest.mark.usefixtures("single_threaded")
def test_leaving_without_the_result_reaps_the_child() -> None:
    with Background(lambda: "x" * 1_000_000, _same, _same) as bg:
        pid = bg.pid
        assert pid, "the child should have been started"
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left behind
