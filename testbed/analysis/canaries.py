"""The canary consumer of a capture scan (see `scan`, `consumers.Part`): guest-originated
TCP/UDP payloads searched per flow direction, in capture order, so that a canary split over
segments (and over batches: each flow's last bytes are carried) is found, counted and
labelled exactly as `evidence.canary_in_pcap` (the reference) does per packet.

- with the C extension, `native.native_canary_scan`: each packet's payload searched with
  its flow's tail, the payloads of a batch joined and searched with one memmem per form
  (~0.01 s a million packets of a lab run, with the glue ~0.03 s);
- without it, the numpy path: payloads joined per flow direction (`native.gather`) and
  searched with `bytes.find` (~0.08 s a million packets).

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
from .evidence import PlaintextHits, canary_forms
from .pcapvec import IPColumns

__all__ = ["CanaryConsumer"]

I64 = NDArray[np.int64]


def _flow_order(c: IPColumns, rows: I64) -> tuple[I64, NDArray[np.bool_]]:
    """`rows` sorted by flow direction then capture order; True where a flow starts."""
    cols: list[NDArray[Any]] = [c.order[rows], c.dport[rows], c.sport[rows], c.proto[rows]]
    for a in (c.dst, c.src):
        cols += [a[rows]] if a.ndim == 1 else [a[rows, 1], a[rows, 0]]
    order = np.lexsort(cols)
    change = np.zeros(len(order), dtype=bool)
    if len(order):
        change[0] = True
    for col in cols[1:]:
        s = col[order]
        change[1:] |= s[1:] != s[:-1]
    return rows[order], change


class CanaryConsumer:
    def __init__(self, canary: str, variants: list[str]) -> None:
        self.forms = canary_forms(canary)
        self.keep = max(len(b) for _, b in self.forms) - 1
        self.joined = b"".join(b for _, b in self.forms)
        self.form_ends = np.cumsum([len(b) for _, b in self.forms], dtype=np.int64)
        self.variants = variants
        self.tails: dict[tuple[Any, ...], bytes] = {}
        self.found: PlaintextHits = {}

    def add(self, parts: Sequence[Part]) -> None:
        for version in (4, 6):
            chosen = [(p, np.flatnonzero((p.guest >= 0) & (p.cols.poff >= 0)
                                         & (p.cols.pend > p.cols.poff)))
                      for p in parts if p.cols.version == version]
            chosen = [(p, r) for p, r in chosen if r.size]
            if not chosen:
                continue
            if native.native_canary_scan is not None and native.native_group_ids is not None:
                self._add_native(version, chosen)
                continue
            gather = native.gather()
            payloads = b"".join([gather(buf, c.poff[r], c.pend[r]) for (buf, c, _), r in chosen])
            cols = IPColumns(version, *(np.concatenate([getattr(p.cols, name)[r]
                                                        for p, r in chosen])
                                        for name in IPColumns._fields[1:]))
            guest = np.concatenate([p.guest[r] for p, r in chosen])
            self._search(payloads, cols, guest)

    def _add_native(self, version: int, chosen: list[tuple[Part, I64]]) -> None:
        """The rows' search in C, per packet in capture order as `evidence.canary_in_pcap`
        does it (`native.native_canary_scan`); `_search` is the numpy reference."""
        assert native.native_canary_scan is not None and native.native_group_ids is not None
        if len(chosen) == 1:
            (buf, c, guest), rows = chosen[0]
            starts, ends = c.poff[rows], c.pend[rows]
        else:  # odd frames have their own buffer: one buffer, rows in capture order
            sizes = [p.cols.pend[r] - p.cols.poff[r] for p, r in chosen]
            buf = b"".join([native.gather()(p.buf, p.cols.poff[r], p.cols.pend[r])
                            for p, r in chosen])
            ends = np.cumsum(np.concatenate(sizes))
            starts = ends - np.concatenate(sizes)
            rows = np.arange(len(ends))
            c = IPColumns(version, *(np.concatenate([getattr(p.cols, name)[r]
                                                     for p, r in chosen])
                                     for name in IPColumns._fields[1:]))
            guest = np.concatenate([p.guest[r] for p, r in chosen])
            order = np.argsort(c.order, kind="stable")
            rows, starts, ends = order, starts[order], ends[order]
        words = [c.src[rows], c.dst[rows]] if version == 4 else [
            c.src[rows, 0], c.src[rows, 1], c.dst[rows, 0], c.dst[rows, 1]]
        words += [c.proto[rows], c.sport[rows], c.dport[rows]]
        n = len(rows)
        table = np.empty((n, len(words)), dtype=np.uint64)
        for j, w in enumerate(words):
            table[:, j] = w
        gid, heads = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
        g = native.native_group_ids(table, len(words), gid, heads)
        first = rows[heads[:g]]
        src, dst = c.src[first].tolist(), c.dst[first].tolist()
        if version == 6:
            src, dst = [tuple(a) for a in src], [tuple(a) for a in dst]
        flows = list(zip(src, dst, c.proto[first].tolist(), c.sport[first].tolist(),
                         c.dport[first].tolist(), strict=True))
        old = [self.tails.get(f, b"") for f in flows]
        keep = self.keep
        hits, labels = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
        out, out_len = bytearray(g * keep), np.empty(g, dtype=np.int64)
        native.native_canary_scan(
            buf, np.ascontiguousarray(starts, np.int64), np.ascontiguousarray(ends, np.int64),
            gid, self.joined, self.form_ends, b"".join(old),
            np.cumsum([len(t) for t in old], dtype=np.int64), keep, hits, labels, out, out_len)
        for j, (f, size) in enumerate(zip(flows, out_len.tolist(), strict=True)):
            self.tails[f] = bytes(out[j * keep : j * keep + size])
        for i in np.flatnonzero(hits).tolist():
            r = int(rows[i])
            mask = int(labels[i])
            found = {label for j, (label, _) in enumerate(self.forms) if mask >> j & 1}
            self._record(c, guest, r, int(hits[i]), found)

    def _record(self, c: IPColumns, guest: I64, r: int, hits: int, labels: set[str]) -> None:
        key = (self.variants[int(guest[r])], packed_address(c.version, c.dst[r]), int(c.proto[r]),
               int(c.dport[r]), int(c.sport[r]))
        ts = float(c.ts[r])
        rec = self.found.get(key)
        if rec is None:
            self.found[key] = [ts, hits, packed_address(c.version, c.src[r]), labels]
        else:
            rec[0] = min(rec[0], ts)
            rec[1] += hits
            rec[3].update(labels)

    def _search(self, payloads: bytes, c: IPColumns, guest: I64) -> None:
        """`payloads`: the rows' payloads, joined in row order."""
        size = c.pend - c.poff
        after = np.cumsum(size)
        rows, starts = _flow_order(c, np.arange(len(size)))
        stream = native.gather()(payloads, (after - size)[rows], after[rows])
        bounds = np.concatenate(([0], np.cumsum(size[rows])))
        heads = np.flatnonzero(starts)
        rowlist = rows.tolist()
        for label, form in self.forms:
            at = stream.find(form)
            while at >= 0:
                seg = np.searchsorted(bounds, [at, at + len(form) - 1], "right") - 1
                flow = np.searchsorted(heads, seg, "right") - 1
                if flow[0] == flow[1]:
                    self._hit(c, guest, rowlist[int(seg[1])], label)
                at = stream.find(form, at + len(form))
        # matches that start in the flow's bytes of earlier batches, and its new tail
        edges = [*bounds[heads].tolist(), len(stream)]
        hr = rows[heads]
        src, dst = c.src[hr].tolist(), c.dst[hr].tolist()
        if c.version == 6:
            src, dst = [tuple(a) for a in src], [tuple(a) for a in dst]
        tails, keep = self.tails, self.keep
        windows: list[bytes] = []  # each flow's old tail + its first bytes here
        owners: list[tuple[bytes, int, int]] = []
        for f, key in enumerate(zip(src, dst, c.proto[hr].tolist(), c.sport[hr].tolist(),
                                    c.dport[hr].tolist(), strict=True)):
            lo, hi = edges[f], edges[f + 1]
            tail = tails.get(key, b"")
            if tail:
                windows.append(tail + stream[lo : min(hi, lo + keep)])
                owners.append((tail, lo, min(hi, lo + keep)))
            tails[key] = (tail + stream[max(lo, hi - keep) : hi])[-keep:]
        # only the windows holding a form are searched one by one (in flow order)
        joined = b"".join(windows)
        ends = np.cumsum([len(w) for w in windows])
        hit: set[int] = set()
        for _, form in self.forms:
            at = joined.find(form)
            while at >= 0:
                span = np.searchsorted(ends, [at, at + len(form) - 1], "right")
                if span[0] == span[1]:
                    hit.add(int(span[0]))
                at = joined.find(form, at + 1)
        for w in sorted(hit):
            tail, lo, hi = owners[w]
            self._across(tail, stream, lo, hi, bounds, c, guest, rows)

    def _across(self, tail: bytes, stream: bytes, lo: int, hi: int, bounds: I64,
                c: IPColumns, guest: I64, rows: I64) -> None:
        window = tail + stream[lo:hi]
        for label, form in self.forms:
            at = window.find(form, max(0, len(tail) - len(form) + 1))
            while 0 <= at < len(tail):
                end = lo + at + len(form) - 1 - len(tail)
                seg = int(np.searchsorted(bounds, end, "right")) - 1
                self._hit(c, guest, int(rows[seg]), label)
                at = window.find(form, at + len(form))

    def _hit(self, c: IPColumns, guest: I64, r: int, label: str) -> None:
        key = (self.variants[int(guest[r])], packed_address(c.version, c.dst[r]), int(c.proto[r]),
               int(c.dport[r]), int(c.sport[r]))
        ts = float(c.ts[r])
        rec = self.found.get(key)
        if rec is None:
            self.found[key] = [ts, 1, packed_address(c.version, c.src[r]), {label}]
        else:
            rec[0] = min(rec[0], ts)
            rec[1] += 1
            rec[3].add(label)
