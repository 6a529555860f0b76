"""The record-header walk of the vectorised path: the offsets of a batch's records.

Stated speed requirement (issue 10): the whole analyze stage at >= 1 M packets/s and
>= 0.25x `tcpdump -r FILE -w /dev/null`. This walk is the one loop of the fast path that
numpy cannot express (each record's offset depends on the previous record's length); in
Python it costs ~0.5 us per record, about 0.2 s of a 1 M-packet analysis, a fifth of the
whole stage. It is therefore hand-written in C (`_recwalk.c`, built by setuptools at
`pip install -e .`), ~2 ns per record. The Python functions here are the reference; the
tests run every capture case through both. Without the extension the Python walk is used,
with a one-line notice on stderr: slower, never different.

Both walks only collect offsets (no check on the records): `pcapvec` checks them all.
- `pcap_offsets(buf, pos, count, big)`: classic pcap record offsets from `pos`: each offset
  is taken, then the walk stops when the record header's captured length (bytes 8..12) is
  past the buffer, else moves by 16 + that length; at most `count` offsets.
- `pcapng_offsets(buf, pos, count, big)`: the run of enhanced packet blocks (type 6) from
  `pos`: stops at a block header past the buffer or of another type, else moves by the
  block's total length; at most `count` offsets.
Both return an int64 numpy array.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["NATIVE", "Walk", "native_walk", "python_walk"]

I64 = NDArray[np.int64]
Walk = Callable[[bytes, int, int, bool], I64]


def _pcap_py(buf: bytes, pos: int, count: int, big: bool) -> I64:
    offs = array("q")
    app = offs.append
    incl = struct.Struct(">8xI" if big else "<8xI").unpack_from
    p = pos
    try:
        for _ in range(count):
            app(p)
            p += 16 + incl(buf, p)[0]
    except struct.error:  # header past the data: pcapvec checks every offset
        pass
    return np.frombuffer(offs, dtype=np.int64)


def _pcapng_py(buf: bytes, pos: int, count: int, big: bool) -> I64:
    offs = array("q")
    app = offs.append
    head = struct.Struct(">II" if big else "<II").unpack_from
    p = pos
    try:
        for _ in range(count):
            btype, tlen = head(buf, p)
            if btype != 6:
                break
            app(p)
            p += tlen
    except struct.error:
        pass
    return np.frombuffer(offs, dtype=np.int64)


python_walk: tuple[Walk, Walk] = (_pcap_py, _pcapng_py)
native_walk: tuple[Walk, Walk] | None = None

try:
    from ._recwalk import pcap_offsets, pcapng_offsets  # type: ignore[import-not-found]
except ImportError:  # not built (no compiler at install time): the reference walk
    NATIVE = False
else:
    NATIVE = True

    def _pcap_c(buf: bytes, pos: int, count: int, big: bool) -> I64:
        return np.frombuffer(pcap_offsets(buf, pos, count, big), dtype=np.int64)

    def _pcapng_c(buf: bytes, pos: int, count: int, big: bool) -> I64:
        return np.frombuffer(pcapng_offsets(buf, pos, count, big), dtype=np.int64)

    native_walk = (_pcap_c, _pcapng_c)

_noticed = False


def walks() -> tuple[Walk, Walk]:
    """(pcap walk, pcapng walk): native when built; else the reference, said once."""
    global _noticed
    if native_walk is not None:
        return native_walk
    if not _noticed:
        _noticed = True
        print("testbed: native record walk not built (reinstall with a C compiler and the "
              "Python headers); reading captures in pure Python, slower", file=sys.stderr)
    return python_walk
