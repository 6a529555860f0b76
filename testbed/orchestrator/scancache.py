"""The scans of a run's capture files, kept beside its analysis so a re-analysis reuses
them.

`scan_run(run, guests, infrastructure, canary)` returns `analysis.scan.scan_capture`'s
result for ``capture/gateway.pcap``, `flow_scan_run(run, guests, canary)`
`analysis.flowscan.scan_flows`'s for ``capture/flows.mitm``. Each is read from a JSON
file in ``analysis/`` of the run that owns the capture (a re-analysis in
``reanalysis/<id>/`` links the capture, so it finds the original run's files) when that
file was made from the same capture file (size, mtime and the sha256 of its first and
last MiB) with the same guests, infrastructure and canary, by the same code (the sources of
`testbed.analysis`, its C included, and `testbed.run`); otherwise the file is scanned
and the result saved. Only placement (GeoIP) differs between analyses of one run, and it
is in neither scan.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

from testbed._errors import AnalysisError
from testbed.analysis.flowscan import FlowScan, scan_flows
from testbed.analysis.scan import CaptureScan, scan_capture
from testbed.orchestrator.background import Background
from testbed.orchestrator.rundir import RunDir
from testbed.run import files

__all__ = ["Scans", "flow_scan_run", "scan_run"]

#: the packages whose code makes and writes a scan (their sources key a saved scan)
_CODE = ("analysis", "run")
_EDGE = 1 << 20


class _Saved(Protocol):
    def to_json(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=_Saved)


@functools.cache
def _code() -> str:
    """The sha256 of the code that makes and writes a scan: a saved scan made by other code
    (an upgrade, a fix) is not reused. About a millisecond, once per process."""
    h = hashlib.sha256()
    for package in _CODE:
        folder = Path(__file__).resolve().parents[1] / package
        for source in sorted([*folder.glob("*.py"), *folder.glob("*.c")]):
            h.update(f"testbed.{package}/{source.name}".encode() + b"\0" + source.read_bytes())
    return h.hexdigest()


def _fingerprint(path: Path) -> dict[str, Any]:
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(_EDGE))
        if st.st_size > 2 * _EDGE:
            f.seek(st.st_size - _EDGE)
            h.update(f.read(_EDGE))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "edges_sha256": h.hexdigest()}


def _reuse(source: Path, name: str, inputs: dict[str, Any], scan: Callable[[], S],
           load: Callable[[Mapping[str, Any]], S]) -> S:
    real = source.resolve()
    cache = real.parent.parent / name  # the run that owns the capture
    try:
        key = {"code": _code(), "file": _fingerprint(real), **inputs}
    except OSError as e:
        raise AnalysisError(f"cannot read {source}: {e.strerror or e}") from e
    try:
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return load(saved["scan"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, AnalysisError):
        pass  # no usable earlier scan: scan again
    result = scan()
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"key": key, "scan": result.to_json()}) + "\n")
        os.replace(tmp, cache)
    except OSError:  # a read-only run (a full disk) is analysed all the same, not reused
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return result


def scan_run(run: RunDir, guests: Mapping[str, str], infrastructure: Sequence[str],
             canary: str) -> CaptureScan:
    inputs = {"guests": dict(guests), "infrastructure": list(infrastructure), "canary": canary}
    scan = _reuse(run.pcap, files.CAPTURE_SCAN, inputs,
                  lambda: scan_capture(run.pcap, guests, infrastructure, canary),
                  CaptureScan.from_json)
    if scan.endpoints.capture == str(run.pcap):
        return scan
    # the capture as this run names it (a re-analysis: through its link)
    return replace(scan, endpoints=replace(scan.endpoints, capture=str(run.pcap)))


def flow_scan_run(run: RunDir, guests: Mapping[str, str], canary: str) -> FlowScan | None:
    """The flow file's scan; None for a run without one."""
    flows = run.file(files.FLOWS)
    if not flows.exists():
        return None
    return _reuse(flows, files.FLOWS_SCAN, {"guests": dict(guests), "canary": canary},
                  lambda: scan_flows(flows, guests, canary), FlowScan.from_json)


class Scans:
    """Both scans of a run, each started at once in a forked child (`Background`): the
    capture's and the flow file's run on the machine's cores while this process goes on
    with what does not need them (imports, the lab's map, the databases), and the results
    come back as JSON. `testbed analyze` makes it before the stage's other imports, which
    then run beside the scans; the scanners (this module's imports) are loaded once, before
    the children fork (issue 10's speed target: `testbed analyze` at >= 0.25x `tcpdump -r`).
    A context manager: leaving it reaps (on Ctrl-C kills) the children."""

    def __init__(self, run: RunDir) -> None:
        manifest = run.manifest()
        guests = manifest.address_to_variant
        canary = manifest.canary or ""
        infrastructure = list(manifest.infrastructure)
        self._stack = contextlib.ExitStack()
        self.capture: Background[CaptureScan] = self._stack.enter_context(Background(
            lambda: scan_run(run, guests, infrastructure, canary), _dump, CaptureScan.from_json))
        self.flows: Background[FlowScan | None] = self._stack.enter_context(Background(
            lambda: flow_scan_run(run, guests, canary), _dump, _flow_scan))

    def __enter__(self) -> Scans:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.__exit__(kind, error, tb)


def _dump(scan: _Saved | None) -> object:
    return scan.to_json() if scan is not None else None


def _flow_scan(data: Any) -> FlowScan | None:
    return FlowScan.from_json(data) if data is not None else None
