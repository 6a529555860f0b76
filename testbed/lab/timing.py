"""How long each part of the lab's set-up and teardown took, for the run's record and the
lab-run benchmark (``benchmarks/bench_lab_run.py``): one JSON line per part in
``<run>/lab/timings.jsonl`` — ``{"who": "tom-en", "step": "trust stores", "start": …,
"seconds": …}`` (``who`` is a variant, ``gateway`` or ``pool``).

Writing a line never fails the run: a record that cannot be written is left out.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from testbed.run.files import LAB_TIMINGS

_lock = threading.Lock()


def record(workdir: Path, who: str, step: str, start: float, seconds: float) -> None:
    """One line of ``<workdir>/lab/timings.jsonl`` (``start``: wall-clock seconds)."""
    line = json.dumps({"who": who, "step": step, "start": round(start, 3),
                       "seconds": round(seconds, 3)})
    with _lock, contextlib.suppress(OSError):
        path = workdir / LAB_TIMINGS
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


@contextlib.contextmanager
def span(workdir: Path, who: str, step: str) -> Iterator[None]:
    """Time the ``with`` body as ``step`` of ``who`` (recorded also when it raises)."""
    wall, t0 = time.time(), time.monotonic()
    try:
        yield
    finally:
        record(workdir, who, step, wall, time.monotonic() - t0)


class Clock:
    """Times of one ``who`` in one run folder: ``lap(step)`` records the time since the clock
    was made or its last lap; ``with clock(step): …`` times a block."""

    def __init__(self, workdir: Path, who: str) -> None:
        self.workdir, self.who = workdir, who
        self._wall, self._t0 = time.time(), time.monotonic()

    def lap(self, step: str) -> None:
        now = time.monotonic()
        record(self.workdir, self.who, step, self._wall, now - self._t0)
        self._wall, self._t0 = self._wall + (now - self._t0), now

    def __call__(self, step: str) -> contextlib.AbstractContextManager[None]:
        return span(self.workdir, self.who, step)


def read(workdir: Path) -> list[dict[str, object]]:
    """The run's timing lines (unreadable lines skipped)."""
    path = workdir / LAB_TIMINGS
    out = []
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                d = json.loads(line)
                if isinstance(d, dict):
                    out.append(d)
    return out
