"""The capture scan of a run, kept beside its analysis so a re-analysis reuses it.

`scan_run(run, guests, infrastructure, canary)` returns `analysis.scan.scan_capture`'s
result, read from ``analysis/capture-scan.json`` of the run that owns the capture (a
re-analysis in ``reanalysis/<id>/`` links the capture, so it finds the original run's
file) when that file was made from the same capture (size, mtime and the sha256 of its
first and last MiB) with the same guests, infrastructure and canary; otherwise the
capture is scanned and the file written. Only placement (GeoIP) differs between analyses
of one run, and it is not in the scan.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from testbed._errors import AnalysisError
from testbed.analysis.scan import CaptureScan, scan_capture
from testbed.orchestrator.rundir import RunDir

__all__ = ["SCAN_FILE", "scan_run"]

SCAN_FILE = "capture-scan.json"
_FORMAT = 1  # bump when the scan's content changes
_EDGE = 1 << 20


def _fingerprint(pcap: Path) -> dict[str, Any]:
    st = pcap.stat()
    h = hashlib.sha256()
    with open(pcap, "rb") as f:
        h.update(f.read(_EDGE))
        if st.st_size > 2 * _EDGE:
            f.seek(st.st_size - _EDGE)
            h.update(f.read(_EDGE))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "edges_sha256": h.hexdigest()}


def scan_run(run: RunDir, guests: Mapping[str, str], infrastructure: Sequence[str],
             canary: str) -> CaptureScan:
    pcap = run.pcap.resolve()
    cache = pcap.parent.parent / "analysis" / SCAN_FILE
    try:
        key = {"format": _FORMAT, "capture": _fingerprint(pcap), "guests": dict(guests),
               "infrastructure": list(infrastructure), "canary": canary}
    except OSError as e:
        raise AnalysisError(f"cannot read capture {run.pcap}: {e.strerror or e}") from e
    try:
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return CaptureScan.from_json(saved["scan"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, AnalysisError):
        pass  # no usable earlier scan: scan again
    scan = scan_capture(run.pcap, guests, infrastructure, canary)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "scan": scan.to_json()}) + "\n")
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only run is analysed all the same, only not reused
    return scan
