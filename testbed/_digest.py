"""The sha256 of a file: `file_sha256(path)` (hashlib.file_digest), and `cached_sha256`,
which remembers the digest of a large file by (path, size, mtime, inode) in the process
and in ``$XDG_CACHE_HOME/testbed/sha256.json`` (the bundled GeoIP databases are hashed
for every analysis's provenance: 0.1 s each time otherwise)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from testbed._cache import cache_dir

__all__ = ["cached_sha256", "file_sha256"]

_PERSIST_FROM = 8 << 20  # smaller files are hashed again: cheaper than the cache file


def file_sha256(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _cache_file() -> Path:
    return cache_dir() / "sha256.json"


@functools.lru_cache(maxsize=64)
def _cached(path: str, size: int, mtime_ns: int, inode: int) -> str:
    if size < _PERSIST_FROM:
        return file_sha256(path)
    key = f"{path}|{size}|{mtime_ns}|{inode}"
    cache = _cache_file()
    try:
        known = json.loads(cache.read_text())
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    digest = known.get(key)
    if isinstance(digest, str) and len(digest) == 64:
        return digest
    digest = file_sha256(path)
    known = {k: v for k, v in known.items() if not k.startswith(f"{path}|")}
    known[key] = digest
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=0))
        os.replace(tmp, cache)
    except OSError:
        pass  # no writable cache: hash again next time
    return digest


def cached_sha256(path: Path) -> str:
    st = path.stat()
    return _cached(str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
