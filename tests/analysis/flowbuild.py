"""Write mitmproxy flow files for the tests, with mitmproxy's own writer."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mitmproxy.io import FlowWriter


def write_flows(path: Path, flows: Iterable[Any]) -> Path:
    with open(path, "wb") as f:
        w = FlowWriter(f)
        for fl in flows:
            w.add(fl)
    return path
