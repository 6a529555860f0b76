"""A run's guests' trust stores, made once per list of CAs and shared by its guests
(``testbed.lab.sandbox``): certutil, and keytool's JVM, run once per run instead of once per
guest, on a worker thread beside the guests' network set-up.

    <run>/lab/trust/<n>/ssl/     the guests' /etc/ssl (bundle, hashed names, Java's store):
                                 bound read-only into each guest, through a link in its folder
    <run>/lab/trust/<n>/nssdb/   an NSS database, copied into each guest's home

Made in two stages: the /etc/ssl folder first (``ssl``: a guest's session can start on it),
then the stores (``get``: the guests' homes get theirs, and wait for it).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from testbed._errors import LabError
from testbed.lab import timing, truststores


class _Making:
    def __init__(self, where: Path) -> None:
        self.where = where
        self.ssl_made = threading.Event()  # set when the /etc/ssl stage ended (made or not)
        self.done: Future[truststores.Template] | None = None


class TrustTemplates:
    """The stores of one run, in ``folder`` (one sub-folder per list of CAs); ``clock``
    records how long making them took (``testbed.lab.timing``)."""

    def __init__(self, folder: Path, clock: timing.Clock | None = None) -> None:
        self.folder, self.clock = folder, clock
        self._making: dict[tuple[Path, ...], _Making] = {}
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trust stores")

    def begin(self, cas: Sequence[Path]) -> None:
        """Start making the stores for ``cas`` (once; later calls do nothing)."""
        self._start(cas)

    def ssl(self, cas: Sequence[Path]) -> Path:
        """The guests' /etc/ssl for ``cas``, once made (its Java store may still be under way:
        ``get`` waits for that)."""
        making = self._start(cas)
        making.ssl_made.wait()
        ssl = making.where / "ssl"
        if not (ssl / "certs" / truststores.SYSTEM_BUNDLE.name).is_file():
            assert making.done is not None
            making.done.result()  # raises what stopped it
            raise LabError(f"the guests' trust stores in {making.where} were not made")
        return ssl

    def get(self, cas: Sequence[Path]) -> truststores.Template:
        """Every store for ``cas``, waiting until they are made."""
        done = self._start(cas).done
        assert done is not None
        return done.result()

    def close(self) -> None:
        """Wait for stores being made; make no others."""
        self._worker.shutdown(wait=True, cancel_futures=True)

    def _start(self, cas: Sequence[Path]) -> _Making:
        key = tuple(cas)
        with self._lock:
            if key not in self._making:
                making = _Making(self.folder / str(len(self._making)))
                making.done = self._worker.submit(self._make, making, key)
                self._making[key] = making
            return self._making[key]

    def _make(self, making: _Making, cas: tuple[Path, ...]) -> truststores.Template:
        try:
            if self.clock is None:
                return self._stages(making, cas)
            with self.clock("trust stores made once"):
                return self._stages(making, cas)
        finally:
            making.ssl_made.set()  # (also when it failed: ``ssl`` says so)

    @staticmethod
    def _stages(making: _Making, cas: tuple[Path, ...]) -> truststores.Template:
        if making.where.exists():
            shutil.rmtree(making.where)
        truststores.system_store(making.where / "ssl", cas)
        making.ssl_made.set()
        return truststores.build_template(making.where, cas)
