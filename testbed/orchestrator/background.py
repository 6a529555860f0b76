"""One piece of work in a forked child, while this process does another.

`Background(work, dump, load)` forks at once (where the platform can, and only when this
process runs no other thread) and runs `work()` in the child; `result()` waits for it and
returns `load(dump(value))` (a JSON round trip through a pipe). When the child cannot be
used (no fork, other threads, the child failed or died), `result()` runs `work()` here
instead, so errors are raised as without a child and results never differ. Used as a
context manager: leaving it without `result()` lets the child finish its work (it ends
at its write, the pipe being closed) and reaps it; on Ctrl-C the child is killed.

Why: `testbed analyze` reads the capture and the mitmproxy flow file, two independent
passes; both run in children (`scancache.Scans`), started before the stage's own imports,
so the scans, mitmproxy's import and this process's imports share the machine's cores
(issue 10's speed target: the whole stage at >= 0.25x `tcpdump -r`).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

__all__ = ["Background"]

T = TypeVar("T")


class Background(Generic[T]):
    def __init__(self, work: Callable[[], T], dump: Callable[[T], Any],
                 load: Callable[[Any], T]) -> None:
        self.work, self.load = work, load
        self.pid = 0
        self.fd = -1
        if not hasattr(os, "fork") or threading.active_count() > 1:
            return
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's code
            code = 1
            try:
                os.close(r)
                data = json.dumps(dump(work())).encode()
                with os.fdopen(w, "wb") as out:
                    out.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        self.pid, self.fd = pid, r

    def result(self) -> T:
        if not self.pid:
            return self.work()
        with os.fdopen(self.fd, "rb") as f:
            data = f.read()
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        if os.waitstatus_to_exitcode(status) != 0 or not data:
            return self.work()  # here, where its error (if any) is raised as usual
        return self.load(json.loads(data))

    def __enter__(self) -> Background[T]:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.pid:  # no result wanted: the child ends at its write (broken pipe)
            os.close(self.fd)
            if isinstance(error, KeyboardInterrupt):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = 0
