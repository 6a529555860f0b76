"""The lab's record of how long each part of its set-up and teardown took
(``testbed.lab.timing``, ``<run>/lab/timings.jsonl``): one line per part, also for a part that
failed; a record that cannot be written never fails the run."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from testbed.lab import timing
from testbed.run import files


def test_each_part_is_one_line_with_who_step_and_seconds(tmp_path):
    clock = timing.Clock(tmp_path, "tom-en")
    with clock("network"):
        pass
    timing.record(tmp_path, "pool", "trust stores made once", 1000.0, 0.25)
    lines = timing.read(tmp_path)
    assert [(d["who"], d["step"]) for d in lines] == [("tom-en", "network"),
                                                        ("pool", "trust stores made once")]
    assert lines[1]["seconds"] == 0.25 and lines[1]["start"] == 1000.0
    assert all(isinstance(d["seconds"], float) and d["seconds"] >= 0 for d in lines)
    assert (tmp_path / files.LAB_TIMINGS).is_file()


@pytest.mark.parametrize("parts", [1, 3, 6])
def test_laps_follow_each_other_from_the_clocks_start(tmp_path, parts):
    clock = timing.Clock(tmp_path, "g0")
    for i in range(parts):
        clock.lap(f"part {i}")
    lines = timing.read(tmp_path)
    assert [d["step"] for d in lines] == [f"part {i}" for i in range(parts)]
    for before, after in itertools.pairwise(lines):  # each lap starts where the last ended
        assert abs(before["start"] + before["seconds"] - after["start"]) < 0.01


def test_a_part_that_fails_is_recorded_and_its_error_goes_on(tmp_path):
    with pytest.raises(RuntimeError, match="no namespace"):
        with timing.span(tmp_path, "regular", "network"):
            raise RuntimeError("no namespace")
    assert [d["step"] for d in timing.read(tmp_path)] == ["network"]


@pytest.mark.parametrize("threads", [2, 8])
def test_guests_started_at_once_write_whole_lines(tmp_path, threads):
    def guest(i: int) -> None:
        for step in ("network", "folders", "agent answers"):
            with timing.span(tmp_path, f"g{i}", step):
                pass

    workers = [threading.Thread(target=guest, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    lines = timing.read(tmp_path)
    assert len(lines) == 3 * threads
    assert {d["who"] for d in lines} == {f"g{i}" for i in range(threads)}


def test_a_record_that_cannot_be_written_does_not_fail_the_run(tmp_path):
    blocked = tmp_path / "run"
    blocked.write_text("a file where the run folder should be\n")
    with timing.span(blocked, "pool", "teardown"):
        pass
    assert timing.read(blocked) == []


def test_unreadable_lines_are_skipped(tmp_path):
    path = tmp_path / files.LAB_TIMINGS
    path.parent.mkdir(parents=True)
    path.write_text('{"who": "a", "step": "b", "start": 1, "seconds": 2}\nnot json\n[1]\n')
    assert timing.read(Path(tmp_path)) == [{"who": "a", "step": "b", "start": 1, "seconds": 2}]
