"""The consumers of a capture scan (see `scan`): each takes the packets of one batch,
as `Part`s (numpy columns over a buffer, rows ordered by `IPColumns.order`), with `add`.

- `NameConsumer`: the rows that can carry a name are picked vectorised (TCP/UDP source
  port 53, TCP payload starting 0x16, an HTTP method's first letter, a flow in the
  middle of a ClientHello), then fed to `names.NameScanner`: DNS over UDP in bulk (a
  batch's repeats dropped first by `native.first_seen`), ClientHellos whole in their first
  record on flows not mid-hello through the C SNI walk (`native.snis`; the index is a set,
  so their order does not matter), the rest in capture order;
- `canaries.CanaryConsumer`: the canary in guest-originated payloads, per flow direction;
- `bursts.BurstConsumer`: the burst starts per endpoint of guest-originated TCP/UDP rows.

Speed requirement (issue 10): the whole analyze stage at >= 1 M packets/s and >= 0.25x
`tcpdump -r`; per million packets of a lab run the names take ~0.06 s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from . import native
from .addrindex import AddrIndex
from .names import NameScanner
from .payloads import HTTP_FIRST
from .pcapvec import IPColumns

__all__ = [
    "NameConsumer",
    "Part",
    "address_value",
    "packed_address",
]

I64 = NDArray[np.int64]
U64 = NDArray[np.uint64]
# distinct DNS responses remembered across batches: re-hashed with every batch (~0.1 ms per
# thousand), so few enough that a capture of ever-new responses costs little
_DNS_MEMORY = 1 << 12


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
        # the DNS response bodies handed over so far, joined (see `_new_dns`)
        self.dns_memory = b""
        self.dns_starts, self.dns_ends, self.dns_tags = (np.zeros(0, dtype=np.int64)
                                                         for _ in range(3))

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
                keep = self._new_dns(buf, c.poff[rows] + 2, c.pend[rows], to)
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


    def _new_dns(self, buf: bytes, starts: I64, ends: I64, to: I64) -> I64:
        """The rows whose (message but its id, variant) no earlier row of the scan had:
        responses repeat but for their id and `NameScanner.dns` takes each once, so only
        the first of each is handed over. The bodies seen so far are kept joined (up to
        _DNS_MEMORY of them; past that they are forgotten, which only hands repeats over)
        and searched with the batch's in one `native.first_seen`."""
        first_seen, gather = native.first_seen(), native.gather()
        ends = np.maximum(ends, starts)  # a message shorter than its id: empty, as sliced
        old = len(self.dns_tags)
        joined = self.dns_memory + gather(buf, starts, ends)
        size = ends - starts
        at = len(self.dns_memory) + np.cumsum(size) - size
        keep = first_seen(joined, np.concatenate((self.dns_starts, at)),
                          np.concatenate((self.dns_ends, at + size)),
                          np.concatenate((self.dns_tags, to)))
        keep = keep[keep >= old] - old
        if old + len(keep) > _DNS_MEMORY:
            self.dns_memory, self.dns_starts, self.dns_ends, self.dns_tags = b"", *(
                np.zeros(0, dtype=np.int64) for _ in range(3))
        else:
            self.dns_memory += gather(buf, starts[keep], ends[keep])
            new_size = size[keep]
            end = len(self.dns_memory) - np.sum(new_size) + np.cumsum(new_size)
            self.dns_starts = np.concatenate((self.dns_starts, end - new_size))
            self.dns_ends = np.concatenate((self.dns_ends, end))
            self.dns_tags = np.concatenate((self.dns_tags, to[keep]))
        return keep

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
