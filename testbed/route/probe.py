"""Looking out of a route from inside the gateway's namespace, without starting processes: a
thread that has entered the namespace asks a resolver through one interface (SO_BINDTODEVICE),
so an answer proves that this interface, and only it, carries the route."""

from __future__ import annotations

import os
import queue
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dnslib import QTYPE, DNSRecord

from testbed._errors import LabError

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
NETNS_RUN = Path("/run/netns")
T = TypeVar("T")


def ask(resolver: str, name: str, device: str | None, timeout: float = 1.0
        ) -> DNSRecord | None:
    """One DNS query (type A) from this thread's namespace; the answer, or None."""
    query = DNSRecord.question(name, "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        if device:
            try:
                s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, device.encode())
            except OSError:
                return None  # no such interface (any more)
        s.settimeout(timeout)
        try:
            s.sendto(query.pack(), (resolver, 53))
            while True:
                data, _ = s.recvfrom(4096)
                reply = DNSRecord.parse(data)
                if reply.header.id == query.header.id:
                    return reply
        except (OSError, ValueError, Exception):
            return None


def first_address(reply: DNSRecord | None) -> str | None:
    for rr in reply.rr if reply is not None else []:
        if rr.rtype == QTYPE.A:
            return str(rr.rdata)
    return None


def link_exists(name: str) -> bool:
    try:
        socket.if_nametoindex(name)
        return True
    except OSError:
        return False


_CLONE_NEWNET: int = getattr(os, "CLONE_NEWNET", 0x40000000)


def _setns(fd: int, kind: int) -> None:
    setns: Callable[[int, int], None] = getattr(os, "setns")  # noqa: B009 (Linux only)
    setns(fd, kind)


class InNamespace:
    """A worker thread living in network namespace ``ns``: ``call(fn)`` runs ``fn`` there."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self._jobs: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]] | None] = \
            queue.Queue()
        ready: queue.Queue[BaseException | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name=f"netns {ns}")
        self._thread.start()
        err = ready.get()
        if err is not None:
            raise LabError(f"cannot enter namespace {ns}: {err}") from err

    def _run(self, ready: queue.Queue[BaseException | None]) -> None:
        try:
            fd = os.open(NETNS_RUN / self.ns, os.O_RDONLY)
            try:
                _setns(fd, _CLONE_NEWNET)
            finally:
                os.close(fd)
        except OSError as e:
            ready.put(e)
            return
        ready.put(None)
        while (job := self._jobs.get()) is not None:
            fn, out = job
            try:
                out.put((True, fn()))
            except Exception as e:  # handed to the caller
                out.put((False, e))

    def call(self, fn: Callable[[], T]) -> T:
        out: queue.Queue[Any] = queue.Queue()
        self._jobs.put((fn, out))
        ok, value = out.get()
        if not ok:
            raise value
        result: T = value
        return result

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5)
