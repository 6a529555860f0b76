"""Vectorised look-up of packed addresses (guests, infrastructure) in numpy columns.

With the C extension one binary search per address over the sorted table
(`native.native_addr_find`); without it numpy's `searchsorted` per IPv6 prefix (the
reference). A scan looks up every packet's source and destination, about five searches a
batch (~0.03 s a million packets with numpy), for issue 10's speed requirement (the whole
analyze stage at >= 1 M packets/s and >= 0.25x `tcpdump -r`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from . import native

__all__ = ["AddrIndex"]

U64 = NDArray[np.uint64]
I64 = NDArray[np.int64]


class AddrIndex:
    """Vectorised look-up of packed addresses -> small integer (-1 when absent)."""

    def __init__(self, values: Mapping[bytes, int]) -> None:
        v4 = sorted((int.from_bytes(a, "big"), v) for a, v in values.items() if len(a) == 4)
        self.keys4 = np.array([a for a, _ in v4], dtype=np.uint64)
        self.vals4 = np.array([v for _, v in v4], dtype=np.int64)
        by_high: dict[int, list[tuple[int, int]]] = {}
        for a, v in values.items():
            if len(a) == 16:
                x = int.from_bytes(a, "big")
                by_high.setdefault(x >> 64, []).append((x & ((1 << 64) - 1), v))
        six = sorted(((x >> 64, x & ((1 << 64) - 1)), v) for x, v in (
            (int.from_bytes(a, "big"), v) for a, v in values.items() if len(a) == 16))
        self.keys6 = np.array([k for k, _ in six], dtype=np.uint64).reshape(-1, 2)
        self.vals6 = np.array([v for _, v in six], dtype=np.int64)
        self.v6 = [
            (
                np.uint64(high),
                np.array([lo for lo, _ in sorted(lows)], dtype=np.uint64),
                np.array([v for _, v in sorted(lows)], dtype=np.int64),
            )
            for high, lows in by_high.items()
        ]

    @staticmethod
    def _search(keys: U64, vals: I64, addr: U64) -> tuple[I64, NDArray[np.bool_]]:
        i = np.minimum(np.searchsorted(keys, addr), len(keys) - 1)
        return vals[i], keys[i] == addr

    def find(self, version: int, addr: U64) -> I64:
        if native.native_addr_find is not None:
            out = np.empty(len(addr), dtype=np.int64)
            keys, vals = (self.keys4, self.vals4) if version == 4 else (self.keys6, self.vals6)
            native.native_addr_find(1 if version == 4 else 2,
                                    np.ascontiguousarray(addr, dtype=np.uint64), keys, vals, out)
            return out
        out = np.full(len(addr), -1, dtype=np.int64)
        if version == 4:
            if len(self.keys4):
                v, hit = self._search(self.keys4, self.vals4, addr)
                out[hit] = v[hit]
            return out
        for high, lows, vals in self.v6:
            rows = np.flatnonzero(addr[:, 0] == high)
            if rows.size:
                v, hit = self._search(lows, vals, addr[rows, 1])
                out[rows[hit]] = v[hit]
        return out
