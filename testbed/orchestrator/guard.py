"""What keeps a run's teardown independent of everything that can go wrong around it.

* ``Ledger``: the run's bookkeeping (manifest, events) written through it never raises; a
  write that fails (a full disk) is kept and reported once the lab is down.
* ``deferred_signals``: while the lab comes down, Ctrl-C, SIGTERM and SIGHUP are noted, not
  raised: teardown finishes, then the run ends as interrupted.
* ``RunInterrupted`` / ``RunFailed``: how a run that could not finish tells the CLI what is
  true — whether the lab is down, and what (if anything) remained.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from testbed._errors import TestbedError
from testbed.orchestrator.rundir import RunDir
from testbed.run import files as f

#: errors that mean "no room to write"
FULL = (errno.ENOSPC, errno.EDQUOT)
SHIELDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: what an analysis writes; a failed analysis leaves none of it half-written
ANALYSIS_OUTPUTS = (f.ENDPOINTS, f.ENDPOINTS_CSV, f.ENDPOINTS_TXT, f.EVIDENCE, f.CAPTURE_SCAN,
                    f.FLOWS_SCAN, f.GEO_DIR)


def describe(e: OSError) -> str:
    """One line for a failed write: ``disk full (FILE: No space left on device)``."""
    where = f"{e.filename}: " if e.filename else ""
    what = e.strerror or str(e) or type(e).__name__
    return f"disk full ({where}{what})" if e.errno in FULL else f"{where}{what}"


def disk_full(e: BaseException) -> OSError | None:
    """The full-disk error ``e`` is or was raised from (a module may translate it)."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in FULL:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class Ledger:
    """Bookkeeping writes that must not stop the run from tearing its lab down."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.disk_full = False
        self._lock = threading.Lock()

    def note(self, e: OSError) -> None:
        with self._lock:
            self.disk_full = self.disk_full or e.errno in FULL
            line = describe(e)
            if line not in self.problems:
                self.problems.append(line)

    def write(self, fn: Callable[[], object]) -> bool:
        """``fn()``; False (the failure noted) when it could not write."""
        try:
            fn()
            return True
        except OSError as e:
            self.note(e)
            return False

    @property
    def summary(self) -> str:
        first = self.problems[0] if self.problems else ""
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return first + more


@contextlib.contextmanager
def deferred_signals(received: list[int] | None = None) -> Iterator[list[int]]:
    """Ctrl-C, SIGTERM and SIGHUP do not interrupt the block; the list (``received``, or a new
    one) holds those received. Only the main thread can hold signals (elsewhere the block
    runs as it is)."""
    received = [] if received is None else received
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def defer(signum: int, frame: object) -> None:
        received.append(signum)
        msg = "testbed: still tearing the lab down; it exits once the lab is down\n"
        with contextlib.suppress(OSError):
            os.write(2, msg.encode())  # (not print: the handler may interrupt a print)

    old = {s: signal.signal(s, defer) for s in SHIELDED}
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def discard_partial_analysis(run: Path) -> None:
    """Remove what a failed analysis may have half written (and frees room on a full disk)."""
    for name in ANALYSIS_OUTPUTS:
        p = run / name
        with contextlib.suppress(OSError):
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
        for tmp in (p.parent.glob(p.name + ".tmp") if p.parent.is_dir() else ()):
            with contextlib.suppress(OSError):
                tmp.unlink()


def lab_state_line(left: list[str]) -> str:
    """What the user is told about the lab once the run is over."""
    if not left:
        return "the lab was torn down"
    shown = ", ".join(left[:8]) + (f" and {len(left) - 8} more" if len(left) > 8 else "")
    return (f"the lab was NOT fully torn down: {len(left)} object(s) remain ({shown}); "
            "`testbed lab cleanup` removes them")


class RunInterrupted(KeyboardInterrupt):
    """The run was interrupted; ``left``: what of its lab still exists."""

    def __init__(self, run: Path, left: list[str], during: str = "") -> None:
        super().__init__(f"{run}: interrupted{during}")
        self.run, self.left, self.during = run, left, during

    @property
    def message(self) -> str:
        return f"interrupted{self.during}; {lab_state_line(self.left)} (run: {self.run})"


class RunFailed(TestbedError):
    """The run could not keep its records (a full disk): said in one line, after teardown."""


def settle_status(run: RunDir) -> None:
    """After a whole analysis of ``run``: a run whose analysis was cut short (interrupted,
    abandoned, a full disk) gets the status its lab part ended with."""
    m = run.manifest()
    if m.lab_status and m.status != m.lab_status:
        run.update_manifest(status=m.lab_status, lab_status=None,
                            error=None if m.lab_status == "complete" else m.error)
