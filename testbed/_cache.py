"""testbed's cache folder, ``$XDG_CACHE_HOME/testbed`` (default ``~/.cache/testbed``): what
can be rebuilt at any time (file digests, compiled report templates). Deleting it is safe."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "testbed"
