"""Every call into a role (the gateway, a guest pool, an agent) made the same way, as Cuckoo3
calls its machinery: with a timeout, the state the call must leave behind, and a fallback
when it does not. The call runs on its own thread, so the caller stays in charge: a call that
hangs becomes a ``BackendTimeout`` naming it, and Ctrl-C or SIGTERM reach the caller at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from testbed._errors import LabError

T = TypeVar("T")


class BackendTimeout(LabError):
    """A call into a role did not finish in time."""


@dataclass(frozen=True)
class Timeouts:
    """How long each kind of call may take (seconds)."""

    network: float = 120.0      # the gateway, and the pool's own set-up on it
    capture: float = 60.0       # tcpdump and mitmdump listening
    guest: float | None = None  # one guest up with its agent (None: the pool's start_timeout)
    per_step: float = 2.0       # an agent step's own work, beyond its timeout or sleep
    action_margin: float = 30.0  # on top of an action's steps
    action: float | None = None  # every action's limit (None: from its steps, as above)
    unwind: float = 30.0        # waiting for calls still running before teardown


DEFAULT = Timeouts()


class Pending(Generic[T]):
    """A call running on its own thread."""

    live: ClassVar[set[Pending[object]]] = set()  # awaited calls not finished yet
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, what: str, fn: Callable[[], T],
                 expect: Callable[[T], str | None] | None = None, awaited: bool = True) -> None:
        """``awaited``: teardown waits for this call (it makes things teardown removes)."""
        self.what = what
        self._fn, self._expect = fn, expect
        self._value: T | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        if awaited:
            with Pending._lock:
                Pending.live.add(self)  # type: ignore[arg-type]
        threading.Thread(target=self._run, name=what, daemon=True).start()

    def _run(self) -> None:
        try:
            value = self._fn()
            problem = self._expect(value) if self._expect else None
            if problem:
                raise LabError(f"{self.what}: {problem}")
            self._value = value
        except BaseException as e:  # handed to the caller's thread
            self._error = e
        finally:
            self._done.set()
            with Pending._lock:
                Pending.live.discard(self)  # type: ignore[arg-type]

    def result(self, timeout: float, fallback: Callable[[], object] | None = None,
               limit: float | None = None) -> T:
        """The call's value; raises what it raised, or ``BackendTimeout`` after ``timeout``
        seconds (the rest of ``limit``, the time the call was given). ``fallback`` runs (best
        effort) before either is raised."""
        if not self._done.wait(timeout):
            _run_fallback(fallback)
            raise BackendTimeout(f"{self.what} did not finish within {limit or timeout:g} s")
        if self._error is not None:
            _run_fallback(fallback)
            raise self._error
        return self._value  # type: ignore[return-value]


def _run_fallback(fallback: Callable[[], object] | None) -> None:
    if fallback is not None:
        try:
            fallback()
        except Exception:  # the fallback is best effort; the call's own error is reported
            pass


def call(what: str, fn: Callable[[], T], timeout: float,
         expect: Callable[[T], str | None] | None = None,
         fallback: Callable[[], object] | None = None, awaited: bool = True) -> T:
    """``fn()`` within ``timeout`` seconds; ``expect`` returns what is wrong with its result
    (None: the expected state)."""
    return Pending(what, fn, expect, awaited).result(timeout, fallback)


def unwind(timeout: float) -> list[str]:
    """Wait (up to ``timeout`` s in all) for calls still running, so that teardown does not
    race them; returns the ones that did not end, and forgets them: a later run in the same
    process (``testbed nightly``) neither waits for them nor reports them as its own."""
    deadline = time.monotonic() + timeout
    for p in list(Pending.live):
        p._done.wait(max(0.0, deadline - time.monotonic()))
    with Pending._lock:
        left = [p.what for p in Pending.live]
        Pending.live.clear()
    return left
