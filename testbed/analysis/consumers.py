"""The consumers of a capture scan (see `scan`): each takes the packets of one batch,
as `Part`s (numpy columns over a buffer, rows ordered by `IPColumns.order`), with `add`.

- `NameConsumer`: the rows that can carry a name are picked vectorised (TCP/UDP source
  port 53, TCP payload starting 0x16, an HTTP method's first letter, a flow in the
  middle of a ClientHello), then fed to `names.NameScanner`: DNS over UDP in bulk (a
  batch's repeats dropped first by `native.first_seen`), ClientHellos whole in their first
  record on flows not mid-hello through the C SNI walk (`native.snis`; the index is a set,
  so their order does not matter), the rest in capture order;
- `CanaryConsumer`: guest-originated payloads joined per flow direction (capture order,
  the flow's last bytes carried between batches; joined by `native.gather`) and searched
  with `bytes.find`, so a canary split over segments is found;
- `BurstConsumer`: guest-originated TCP/UDP rows grouped per endpoint with a sort; the
  running latest time per group from one `maximum.accumulate` over (group, time rank).

Speed requirement (issue 10): the whole analyze stage at >= 1 M packets/s; per million
packets of a lab run these take ~0.06 s (names), ~0.08 s (canary), ~0.045 s (bursts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from . import native
from .addrindex import AddrIndex
from .evidence import PlaintextHits, canary_forms
from .names import NameScanner
from .payloads import HTTP_FIRST
from .pcapvec import IPColumns

__all__ = [
    "BURST_GAP",
    "BurstConsumer",
    "CanaryConsumer",
    "NameConsumer",
    "Part",
    "address_value",
    "packed_address",
]

I64 = NDArray[np.int64]
U64 = NDArray[np.uint64]
BURST_GAP = 1.0  # seconds without a packet that end a burst (as `evidence.bursts`)


class Part(NamedTuple):
    """The packets of one batch and one IP version; `guest` is the source's variant
    number (-1 when the source is no guest)."""

    buf: bytes
    cols: IPColumns
    guest: I64


def packed_address(version: int, addr: Any) -> bytes:
    if version == 4:
        return int(addr).to_bytes(4, "big")
    return ((int(addr[0]) << 64) | int(addr[1])).to_bytes(16, "big")


def _mix(version: int, src: U64, dst: U64, ports: I64) -> U64:
    """A 64-bit hash of (src, dst, ports) per row (collisions only add candidates)."""
    with np.errstate(over="ignore"):
        p = ports.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        if version == 4:
            return src * np.uint64(0xC2B2AE3D27D4EB4F) ^ dst * np.uint64(0x165667B19E3779F9) ^ p
        return (src[:, 0] * np.uint64(0xC2B2AE3D27D4EB4F) ^ src[:, 1] * np.uint64(0x27D4EB2F)
                ^ dst[:, 0] * np.uint64(0x165667B19E3779F9) ^ dst[:, 1] * np.uint64(0x85EBCA77)
                ^ p)


def address_value(packed: bytes) -> Any:
    x = int.from_bytes(packed, "big")
    return x if len(packed) == 4 else [x >> 64, x & ((1 << 64) - 1)]


class NameConsumer:
    def __init__(self, guest_of: Mapping[bytes, str], guests: AddrIndex,
                 variants: list[str]) -> None:
        self.scanner = NameScanner(guest_of)
        self.guests = guests
        self.variants: list[str | None] = [*variants, None]  # [-1]: no guest
        self.first_http = np.zeros(256, dtype=bool)
        self.first_http[list(HTTP_FIRST)] = True
        self.packed: dict[Any, bytes] = {}

    def _candidates(self, buf: bytes, c: IPColumns) -> tuple[Any, ...]:
        """(rows `NameScanner.feed` may take a name from, TCP rows, rows of a ClientHello
        not complete in its segment, whose flow's next segments are wanted too, DNS
        responses over UDP: they need no order, and go to `NameScanner.dns` directly,
        rows of a ClientHello complete in its first record, and the end of its message)."""
        has = (c.poff >= 0) & (c.pend > c.poff)
        tcp = has & (c.proto == 6)
        udp53 = has & (c.proto == 17) & (c.sport == 53)
        cand = np.zeros(len(has), dtype=bool)
        partial = np.zeros(len(has), dtype=bool)
        whole_hello = np.zeros(len(has), dtype=bool)
        hello_end = np.zeros(len(has), dtype=np.int64)
        rows = np.flatnonzero(tcp)
        if not rows.size:
            return cand, tcp, partial, udp53, whole_hello, hello_end
        u8 = np.frombuffer(buf, np.uint8)
        first = u8[c.poff[rows]]
        cand[rows] = (c.sport[rows] == 53) | self.first_http[first]
        rows = rows[first == 0x16]
        if rows.size:  # TLS handshake records: ClientHellos, complete or not
            size = c.pend[rows] - c.poff[rows]
            at = np.minimum(c.poff[rows, None] + np.arange(9), len(u8) - 1)
            head = u8[at].astype(np.int64)
            hello = (size < 6) | (head[:, 1] == 3) & (head[:, 5] == 1)
            rlen = head[:, 3] << 8 | head[:, 4]
            hlen = head[:, 6] << 16 | head[:, 7] << 8 | head[:, 8]
            whole = (size >= 9) & (rlen >= 4 + hlen) & (size >= 5 + rlen)
            cand[rows] |= hello
            partial[rows] = hello & ~whole
            whole_hello[rows] = hello & whole & (size >= 9)
            hello_end[rows] = c.poff[rows] + 9 + hlen
        return cand, tcp, partial, udp53, whole_hello, hello_end

    def add(self, parts: Sequence[Part]) -> None:
        picked = [self._candidates(buf, c) for buf, c, _ in parts]
        pending = self.scanner.pending
        if pending or any(p[2].any() for p in picked):
            hashes = [_mix(c.version, c.src, c.dst, c.sport << 16 | c.dport) for _, c, _ in parts]
            wanted = [h[p[2]] for h, p in zip(hashes, picked, strict=True)]
            wanted += [_mix(4 if len(s) == 4 else 6,
                            np.array([address_value(s)], dtype=np.uint64),
                            np.array([address_value(d)], dtype=np.uint64),
                            np.array([sp << 16 | dp]))
                       for s, d, sp, dp in pending]
            keys = np.concatenate(wanted)
            for h, p in zip(hashes, picked, strict=True):
                ordered = p[1] & np.isin(h, keys)
                p[0][...] |= ordered
                p[4][...] &= ~ordered
        for part, p in zip(parts, picked, strict=True):
            if p[4].any():
                p[0][...] &= ~p[4]
                self._hellos(part, np.flatnonzero(p[4]), p[5])
        dns = self.scanner.dns
        for (buf, c, _guest), (_, _, _, udp53, *_) in zip(parts, picked, strict=True):
            rows = np.flatnonzero(udp53)
            if rows.size:
                names = self.variants
                to = self.guests.find(c.version, c.dst[rows])
                # responses repeat but for their id: `dns` takes each (message, variant)
                # once, so only a batch's first of each is handed over
                keep = native.first_seen()(buf, c.poff[rows] + 2, c.pend[rows], to)
                rows, to = rows[keep], to[keep].tolist()
                for a, b, v in zip(c.poff[rows].tolist(), c.pend[rows].tolist(), to,
                                   strict=True):
                    dns(buf[a:b], names[v])
        todo: list[tuple[Any, ...]] = []
        for (buf, c, _guest), (cand, *_) in zip(parts, picked, strict=True):
            rows = np.flatnonzero(cand)
            if not rows.size:
                continue
            src = c.src[rows].tolist()
            dst = c.dst[rows].tolist()
            if c.version == 6:
                src, dst = [tuple(a) for a in src], [tuple(a) for a in dst]
            todo += zip(c.order[rows].tolist(), src, dst, c.proto[rows].tolist(),
                        c.sport[rows].tolist(), c.dport[rows].tolist(), c.poff[rows].tolist(),
                        c.pend[rows].tolist(), [buf] * len(rows), strict=True)
        if not todo:
            return
        todo.sort(key=lambda t: t[0])
        feed = self.scanner.feed
        packed = self.packed
        for _i, src, dst, proto, sport, dport, poff, pend, buf in todo:
            s = packed.get(src)
            if s is None:
                s = packed[src] = packed_address(4 if isinstance(src, int) else 6, src)
            d = packed.get(dst)
            if d is None:
                d = packed[dst] = packed_address(4 if isinstance(dst, int) else 6, dst)
            feed(s, d, proto, sport, dport, buf[poff:pend])


    def _hellos(self, part: Part, rows: I64, hello_end: I64) -> None:
        """ClientHellos whole in their segment's first record, on flows not in the middle
        of one: their order does not matter (the index is a set), so they skip the ordered
        feed; what `NameScanner.feed` does with each, with the SNI walk in C."""
        buf, c, guest = part
        found = native.snis()(buf, c.poff[rows] + 5, hello_end[rows])
        seen: set[tuple[Any, int, str]] = set()
        dst = c.dst[rows].tolist()
        if c.version == 6:
            dst = [tuple(a) for a in dst]
        add, packed = self.scanner.add, self.packed
        for d, g, sni in zip(dst, guest[rows].tolist(), found, strict=True):
            if not sni or (d, g, sni) in seen:
                continue
            seen.add((d, g, sni))
            p = packed.get(d)
            if p is None:
                p = packed[d] = packed_address(c.version, d)
            add(p, sni, "sni", self.variants[g])


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
        for f, size, k in zip(flows, out_len.tolist(), range(0, g * keep, keep or 1),
                              strict=True):
            self.tails[f] = bytes(out[k : k + size])
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
            ts, variant, proto, port, dst, syn = (a[order] for a in (ts, variant, proto, port,
                                                                      dst, syn))
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
