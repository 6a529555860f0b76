from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from testbed import _digest


def test_file_sha256_and_its_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(_digest, "_PERSIST_FROM", 10)
    _digest._cached.cache_clear()
    f = tmp_path / "big.bin"
    f.write_bytes(b"x" * 1000)
    want = hashlib.sha256(b"x" * 1000).hexdigest()
    assert _digest.file_sha256(f) == want
    assert _digest.cached_sha256(f) == want
    saved = json.loads((tmp_path / "cache" / "testbed" / "sha256.json").read_text())
    assert list(saved.values()) == [want]
    f.write_bytes(b"y" * 1001)  # another size: hashed again, the old entry replaced
    assert _digest.cached_sha256(f) == hashlib.sha256(b"y" * 1001).hexdigest()
    assert len(json.loads((tmp_path / "cache" / "testbed" / "sha256.json").read_text())) == 1
