"""The burst consumer of a capture scan (see `scan`, `consumers.Part`): the times at which
each endpoint's guest-originated TCP/UDP traffic starts a burst (no packet of the group for
more than BURST_GAP seconds before, or a SYN), exactly as `evidence.bursts` (the reference).

- with the C extension: rows grouped per endpoint through a hash table and tested in
  capture order against the group's latest time (`native.native_group_ids`,
  `native.native_burst_starts`; ~0.02 s a million packets of a lab run with the glue);
- without it: groups from a sort, the running latest time per group from one
  `maximum.accumulate` over (group, time rank) (~0.045 s a million packets).

Speed requirement (issue 10): the whole analyze stage at >= 1 M packets/s and >= 0.25x
`tcpdump -r`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import native
from .consumers import Part, packed_address

__all__ = ["BURST_GAP", "BurstConsumer"]

I64 = NDArray[np.int64]
BURST_GAP = 1.0  # seconds without a packet that end a burst (as `evidence.bursts`)


class BurstConsumer:
    def __init__(self, variants: list[str]) -> None:
        self.variants = variants
        self.last: dict[tuple[str, bytes, int, int], float] = {}
        self.starts: dict[tuple[str, bytes, int, int], list[float]] = {}
        self.packed: dict[Any, bytes] = {}

    def add(self, parts: Sequence[Part]) -> None:
        for version in (4, 6):
            mine = [p for p in parts if p.cols.version == version]
            rows = [np.flatnonzero((p.guest >= 0) & (p.cols.poff >= 0)) for p in mine]
            if sum(len(r) for r in rows):
                self._add(version, mine, rows)

    def _add(self, version: int, parts: list[Part], rows: list[I64]) -> None:
        def cat(get: Any) -> NDArray[Any]:
            if len(parts) == 1:  # the common batch: no odd frames
                return get(parts[0])[rows[0]]  # type: ignore[no-any-return]
            return np.concatenate([get(p)[r] for p, r in zip(parts, rows, strict=True)])

        index, ts = cat(lambda p: p.cols.order), cat(lambda p: p.cols.ts)
        variant, proto = cat(lambda p: p.guest), cat(lambda p: p.cols.proto)
        port, dst = cat(lambda p: p.cols.dport), cat(lambda p: p.cols.dst)
        syn = (proto == 6) & (cat(lambda p: p.cols.flags) & 0x12 == 0x02)
        if native.native_group_ids is not None:
            self._add_native(version, index, ts, variant, proto, port, dst, syn)
            return
        keys: list[NDArray[Any]] = [port, proto, variant]
        keys[:0] = [dst] if version == 4 else [dst[:, 1], dst[:, 0]]
        order = np.lexsort([index, *keys])
        n = len(order)
        change = np.zeros(n, dtype=bool)
        change[0] = True
        for k in keys:
            s = k[order]
            change[1:] |= s[1:] != s[:-1]
        gid = np.cumsum(change) - 1
        t = ts[order]
        by_rank = np.argsort(t, kind="stable")
        rank = np.empty(n, dtype=np.int64)
        rank[by_rank] = np.arange(n)
        runmax = np.maximum.accumulate(gid * n + rank) - gid * n  # rank of the latest so far
        prev = np.full(n, np.nan)
        prev[1:] = t[by_rank[runmax[:-1]]]
        heads = np.flatnonzero(change)
        first = order[heads]
        dsts = dst[first].tolist()
        if version == 6:
            dsts = [tuple(a) for a in dsts]
        packed = self.packed
        names = []
        for v, d, pr, po in zip(variant[first].tolist(), dsts, proto[first].tolist(),
                                port[first].tolist(), strict=True):
            p = packed.get(d)
            if p is None:
                p = packed[d] = packed_address(version, d)
            names.append((self.variants[v], p, pr, po))
        last = self.last
        carried = np.array([last.get(name, np.nan) for name in names], dtype=float)
        prev[change] = np.nan
        prev = np.fmax(prev, carried[gid])
        start = np.isnan(prev) | (t - prev > BURST_GAP) | syn[order]
        picked = np.flatnonzero(start)
        times = t[picked].tolist()
        cuts = [*np.searchsorted(picked, heads).tolist(), len(picked)]
        latest = np.fmax(carried, np.maximum.reduceat(t, heads)).tolist()
        for g, name in enumerate(names):
            lo, hi = cuts[g], cuts[g + 1]
            if hi > lo:
                self.starts.setdefault(name, []).extend(times[lo:hi])
            last[name] = latest[g]

    def _name(self, version: int, v: int, d: Any, pr: int, po: int) -> tuple[str, bytes, int, int]:
        p = self.packed.get(d)
        if p is None:
            p = self.packed[d] = packed_address(version, d)
        return self.variants[v], p, pr, po

    def _add_native(self, version: int, index: I64, ts: NDArray[np.float64], variant: I64,
                    proto: I64, port: I64, dst: NDArray[Any],
                    syn: NDArray[np.bool_]) -> None:
        """`_add` with the groups from a hash table and the burst test per row in C, in
        capture order (`native.native_group_ids`, `native.native_burst_starts`); its numpy
        half is the reference. Groups are visited in the reference's (sorted) order."""
        assert native.native_group_ids is not None and native.native_burst_starts is not None
        if len(index) > 1 and not (index[1:] > index[:-1]).all():
            order = np.argsort(index, kind="stable")
            ts, variant, proto, port = ts[order], variant[order], proto[order], port[order]
            dst, syn = dst[order], syn[order]
        n = len(index)
        words = [variant, proto, port, *([dst] if version == 4 else [dst[:, 0], dst[:, 1]])]
        table = np.empty((n, len(words)), dtype=np.uint64)
        for j, w in enumerate(words):
            table[:, j] = w
        gid, heads = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
        g = native.native_group_ids(table, len(words), gid, heads)
        heads = heads[:g]
        # the reference's order of groups: by variant, proto, port, then address
        sort = [dst[heads]] if version == 4 else [dst[heads, 1], dst[heads, 0]]
        rank = np.lexsort([*sort, port[heads], proto[heads], variant[heads]])
        dsts = dst[heads].tolist()
        if version == 6:
            dsts = [tuple(a) for a in dsts]
        names = [self._name(version, v, d, pr, po) for v, d, pr, po in zip(
            variant[heads].tolist(), dsts, proto[heads].tolist(), port[heads].tolist(),
            strict=True)]
        last = self.last
        latest = np.array([last.get(name, np.nan) for name in names], dtype=np.float64)
        start = np.zeros(n, dtype=np.uint8)
        native.native_burst_starts(gid, np.ascontiguousarray(ts, np.float64),
                                   syn.astype(np.uint8), BURST_GAP, latest, start)
        picked = np.flatnonzero(start)
        by_group = picked[np.argsort(gid[picked], kind="stable")]
        times = ts[by_group].tolist()
        cuts = np.searchsorted(gid[by_group], np.arange(g + 1)).tolist()
        latest_list = latest.tolist()
        for gi in rank.tolist():
            name = names[gi]
            lo, hi = cuts[gi], cuts[gi + 1]
            if hi > lo:
                self.starts.setdefault(name, []).extend(times[lo:hi])
            last[name] = latest_list[gi]
