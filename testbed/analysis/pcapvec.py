"""The vectorised fast path of capture reading (numpy columns per batch of records).

`PcapReader.flow_batches()` / `scan_batches()` read the capture in 4 MiB chunks. At each
record boundary a batcher walks the record (or EPB) headers, only collecting offsets
(`native`: C, at most _BATCH records), then everything else is numpy: one
fixed-width gather of each record's header, link header and the first 64 bytes of its IP
header (a strided void view over the chunk, so a row is one memcpy), the validity checks
of the scalar loop (lengths, limits, trailing block lengths, interfaces), link-layer
offsets (`linklayer.link_offsets`), IPv4/IPv6 header fields, TCP/UDP/SCTP ports, TCP
flags and payload bounds. The batch stops before the first record the scalar loop would
treat specially (damage, a partial record, a pcapng block that is not an EPB, an EPB
naming an unknown interface or claiming too many bytes): that record is then read by the
scalar loop, which keeps every warning, error and counter identical. Inside a batch,
frames the columns do not cover (more VLAN tags than the columns read, IPv6 extension
headers and fragments) are decoded one by one by the scalar decoder and aggregated into
the `Flows` dict (and listed as odd frames).

With the C extension the same work is two loops per batch (`native`): the pcap walk with
the record checks (`native_pcap_records`), and the frames to columns
(`native_frame_columns`, `_native_columns`); the numpy code above (`_numpy_columns`,
`PcapBatcher.run`'s checks) is their reference, and the tests run both (issue 10's speed
requirement: ~0.06 s a million packets in numpy, ~0.03 s in C).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from . import native
from .decode import V6_EXT, Flows, add_generic
from .linklayer import (
    _IP_ETHERTYPE,
    _VLAN_TABLE,
    LINK_BYTES,
    LINKS,
    VLAN_COLUMNS,
    link_offsets,
    u16,
)

__all__ = ["IPColumns", "OddFrame", "PcapBatcher", "PcapngBatcher", "ScanBatch"]

# Largest frame we accept; anything above is damage (a 64 KiB IP packet plus link and
# capture headers fits comfortably; jumbo/TSO frames up to 256 KiB are still accepted).
MAX_FRAME = 1 << 18
# Largest pcapng block: frame + generous room for options.
MAX_BLOCK = MAX_FRAME + (1 << 16)

_FAST_CHUNK = 1 << 22
_BATCH = 1 << 16  # most records per batch: bounds the memory of one batch
_IP_BYTES = 64  # IPv4 header with options (<= 60) + 4 port bytes; IPv6 40 + 4
_V6_SLOW = np.zeros(256, dtype=bool)  # next headers the scalar decoder walks
_V6_SLOW[[*V6_EXT, 44, 51]] = True
_PORT_PROTO = np.zeros(256, dtype=bool)
_PORT_PROTO[[6, 17, 132]] = True

I64 = NDArray[np.int64]


class IPColumns(NamedTuple):
    """IP packets of one batch, one family, as numpy columns (one row per packet).
    Addresses are big-endian integers: `src`/`dst` have shape (n,) for IPv4 and (n, 2)
    (high, low 64 bits) for IPv6. `proto`, `sport`, `dport` (0 when the packet has no
    ports) and `length` (wire length) are int64; `ts` is float64 seconds, computed
    exactly as the scalar reader does."""

    version: int
    src: NDArray[np.uint64]
    dst: NDArray[np.uint64]
    proto: I64
    sport: I64
    dport: I64
    ts: NDArray[np.float64]
    length: I64
    order: I64  # position of the frame in its batch (orders rows across columns)
    flags: I64  # TCP flags byte (0 for other protocols)
    poff: I64  # TCP/UDP payload start in the batch's buffer; -1 when no TCP/UDP payload
    pend: I64  # payload end (trimmed to the IP length); may be < poff (empty payload)


def _take(buf: bytes, offs: I64, width: int) -> NDArray[np.uint8]:
    """Rows of `width` bytes of `buf` starting at `offs` (0 <= offs <= len(buf)), as an
    (n, width) uint8 array: one memcpy per row through an overlapping void view. Bytes
    past the end of `buf` read as zeros."""
    n = len(buf)
    last = n - width
    if last < 0:  # tiny buffer: gather from a zero-padded copy
        return _take(bytes(buf) + bytes(width), offs, width)
    rows = np.ndarray(shape=(last + 1,), dtype=np.dtype((np.void, width)), buffer=buf, strides=(1,))
    out = rows[np.minimum(offs, last)].view(np.uint8).reshape(len(offs), width)
    over = np.flatnonzero(offs > last)  # the last few rows of a chunk, at most
    if over.size:
        lo = max(0, n - 2 * width)
        out[over] = _take(bytes(buf[lo:]) + bytes(width), offs[over] - lo, width)
    return out


# A frame of a batch the columns do not cover, decoded by the scalar decoder:
# (index in the batch, link type, frame start, frame end, timestamp).
OddFrame = tuple[int, int, int, int, float]


def _l4_columns(
    buf: bytes,
    q: NDArray[np.uint8],
    ihl: I64,
    l4: I64,
    tend: I64,
    proto: I64,
    first: NDArray[np.bool_] | None,
) -> tuple[I64, I64]:
    """(TCP flags, payload start or -1) per row, as `_l4_payload` decides: a TCP header
    needs 20 bytes and a data offset >= 5, a UDP header 8 bytes, before `tend`. `q` holds
    each packet's first _IP_BYTES bytes, `ihl` the IP header length, `l4` the absolute
    offset of the TCP/UDP header; `first` is False for later IPv4 fragments."""
    tcp = (proto == 6) & (l4 + 20 <= tend)
    udp = (proto == 17) & (l4 + 8 <= tend)
    if first is not None:
        tcp &= first
        udp &= first
    at = ihl + 12
    inside = at + 2 <= q.shape[1]
    flat = q.reshape(-1)
    rowbase = np.arange(len(q), dtype=np.int64) * q.shape[1]
    pick = rowbase + np.where(inside, at, 0)
    doff = flat[pick].astype(np.int64)
    flags = flat[pick + 1].astype(np.int64)
    if not inside.all():
        far = np.flatnonzero(~inside & tcp)
        if far.size:
            extra = _take(buf, l4[far] + 12, 2)
            doff[far] = extra[:, 0]
            flags[far] = extra[:, 1]
    tcp &= doff >= 0x50
    poff = np.where(tcp, l4 + ((doff >> 4) << 2), np.where(udp, l4 + 8, -1))
    return np.where(tcp, flags, 0), poff


class Frames(NamedTuple):
    """A batch's frames of one link type: their bounds in `buf`, timestamps, wire lengths
    and their positions in the batch."""

    buf: bytes
    linktype: int
    starts: I64
    ends: I64
    ts: NDArray[np.float64]
    orig: I64
    position: I64


def _numpy_columns(frames: Frames, rows: NDArray[np.uint8],
                   hoff: int) -> tuple[list[IPColumns], I64]:
    """The columns of `frames` (`rows[:, hoff:]`: each one's first bytes), and the frames for
    the scalar decoder (in batch order): the reference of `_native_columns`."""
    buf, linktype, starts, ends, ts, orig, index = frames
    flen = ends - starts
    l3 = link_offsets(linktype, rows[:, hoff : hoff + LINK_BYTES], flen)
    base = hoff + LINKS[linktype].ip_at
    ip = rows[:, base : base + _IP_BYTES]
    moved = np.flatnonzero((l3 >= 0) & (l3 != base - hoff))  # VLAN-tagged frames
    if moved.size:
        ip = ip.copy()
        ip[moved] = _take(buf, starts[moved] + l3[moved], _IP_BYTES)
    avail = flen - l3  # bytes from the IP header to the frame end
    has_ip = l3 >= 0
    ver = ip[:, 0] >> 4
    v4 = has_ip & (avail >= 20) & (ver == 4)
    v6 = has_ip & (avail >= 40) & (ver == 6)
    ext = v6 & _V6_SLOW[ip[:, 6]]
    v6 &= ~ext
    slow = np.flatnonzero(ext | (l3 == -2))
    columns: list[IPColumns] = []
    r4 = np.flatnonzero(v4)
    if r4.size:
        q = ip[r4]
        proto = q[:, 9].astype(np.int64)
        addr = np.ascontiguousarray(q[:, 12:20]).view(">u4").astype(np.uint64)
        frag = ((q[:, 6].astype(np.int64) & 0x1F) << 8) | q[:, 7]
        ihl = (q[:, 0] & 15).astype(np.int64) << 2
        ports = (frag == 0) & _PORT_PROTO[proto] & (ihl + 4 <= avail[r4])
        if (ihl == 20).all():
            sport, dport = u16(q, 20), u16(q, 22)
        else:
            flat = q.reshape(-1)
            at = np.arange(len(q), dtype=np.int64) * _IP_BYTES + ihl
            sport = (flat[at].astype(np.int64) << 8) | flat[at + 1]
            dport = (flat[at + 2].astype(np.int64) << 8) | flat[at + 3]
        ipat = starts[r4] + l3[r4]
        total = u16(q, 2)
        tend = np.where((total >= 20) & (total < avail[r4]), ipat + total, ends[r4])
        l4 = ipat + ihl
        flags, poff = _l4_columns(buf, q, ihl, l4, tend, proto, frag == 0)
        columns.append(
            IPColumns(
                4,
                addr[:, 0],
                addr[:, 1],
                proto,
                np.where(ports, sport, 0),
                np.where(ports, dport, 0),
                ts[r4],
                orig[r4],
                index[r4],
                flags,
                poff,
                tend,
            )
        )
    r6 = np.flatnonzero(v6)
    if r6.size:
        q = ip[r6]
        proto = q[:, 6].astype(np.int64)
        addr = np.ascontiguousarray(q[:, 8:40]).view(">u8").astype(np.uint64)
        ports = _PORT_PROTO[proto] & (avail[r6] >= 44)
        ipat = starts[r6] + l3[r6]
        plen = u16(q, 4)
        tend = np.where((plen > 0) & (plen + 40 < avail[r6]), ipat + 40 + plen, ends[r6])
        forty = np.full(len(r6), 40, dtype=np.int64)
        flags, poff = _l4_columns(buf, q, forty, ipat + 40, tend, proto, None)
        columns.append(
            IPColumns(
                6,
                addr[:, 0:2],
                addr[:, 2:4],
                proto,
                np.where(ports, u16(q, 40), 0),
                np.where(ports, u16(q, 42), 0),
                ts[r6],
                orig[r6],
                index[r6],
                flags,
                poff,
                tend,
            )
        )
    return columns, slow


_LINK_TABLES = (_VLAN_TABLE.tobytes(), _IP_ETHERTYPE.tobytes(), _V6_SLOW.tobytes(),
                _PORT_PROTO.tobytes())


def _native_columns(frames: Frames) -> tuple[list[IPColumns], I64]:
    """`_numpy_columns` in one C loop over the frames (`native.native_frame_columns`)."""
    buf, linktype, starts, ends, ts, orig, index = frames
    assert native.native_frame_columns is not None
    link = LINKS.get(linktype)
    n = len(starts)
    if link is None:  # as `link_offsets`: every frame to the scalar decoder
        return [], np.arange(n, dtype=np.int64)
    i4 = np.empty((7, n), dtype=np.int64)
    a4 = np.empty((2, n), dtype=np.uint64)
    i6 = np.empty((7, n), dtype=np.int64)
    s6 = np.empty((n, 2), dtype=np.uint64)
    d6 = np.empty((n, 2), dtype=np.uint64)
    slow = np.empty(n, dtype=np.int64)
    n4, n6, ns = native.native_frame_columns(
        buf, np.ascontiguousarray(starts, dtype=np.int64),
        np.ascontiguousarray(ends, dtype=np.int64),
        link.ip_at, link.etype_at, link.vlan, link.bsd, VLAN_COLUMNS, *_LINK_TABLES,
        i4, a4, i6, s6, d6, slow)
    columns = []
    for version, count, ints in ((4, n4, i4), (6, n6, i6)):
        if not count:
            continue
        r, proto, sport, dport, flags, poff, pend = ints[:, :count]
        src, dst = (a4[0, :count], a4[1, :count]) if version == 4 else (s6[:count], d6[:count])
        columns.append(IPColumns(version, src, dst, proto, sport, dport, ts[r], orig[r],
                                 index[r], flags, poff, pend))
    return columns, slow[:ns]


def _frame_columns(frames: Frames, rows: NDArray[np.uint8] | None, hoff: int,
                   decode: Callable[..., Any], flows: Flows,
                   odd: list[OddFrame] | None) -> tuple[list[IPColumns], int, int]:
    """Decode a batch of frames of one link type: (columns, IP packets, skipped frames).
    `rows[:, hoff:]` holds each frame's first LINK_BYTES + _IP_BYTES bytes (needed by the
    numpy columns only). Frames the columns cannot express go through `decode` (the scalar
    decoder) into `flows` (and, when `odd` is a list, onto it)."""
    buf, linktype, starts, ends, ts, orig, index = frames
    flen = ends - starts
    if native.native_frame_columns is not None:
        columns, slow = _native_columns(frames)
    else:
        assert rows is not None, "the numpy columns read the frames' first bytes from rows"
        columns, slow = _numpy_columns(frames, rows, hoff)
    packets = sum(len(c.proto) for c in columns)
    skipped = len(flen) - packets - len(slow)
    if len(slow):
        add = add_generic
        for i in slow.tolist():
            pkt = decode(buf, int(starts[i]), int(ends[i]), float(ts[i]), int(orig[i]))
            if pkt is None:
                skipped += 1
            else:
                packets += 1
                add(flows, pkt)
                if odd is not None:
                    odd.append((int(index[i]), linktype, int(starts[i]), int(ends[i]),
                                float(ts[i])))
    return columns, packets, skipped


class ScanBatch(NamedTuple):
    """One batch of `PcapReader.scan_batches()`: the buffer the offsets point into, the
    IP packets as columns, and the other IP packets of the batch (`odd`, already counted
    in the reader's flows dict) for the scalar payload decoder."""

    buf: bytes
    columns: list[IPColumns]
    odd: list[OddFrame]


def _first_bad(good: NDArray[np.bool_]) -> int:
    """Number of leading True values."""
    return len(good) if good.all() else int(np.argmin(good))


# (new position, records, IP packets, skipped frames, columns)
_PcapBatch = tuple[int, int, int, int, list[IPColumns]]
_Records = tuple[I64, I64, I64, I64, NDArray[np.uint8] | None]


class PcapBatcher:
    """Bulk reader of classic pcap records (see the fast-path notes above)."""

    def __init__(self, order: str, scale: float, limit: int, linktype: int) -> None:
        self.big = order == ">"
        self.u32 = np.dtype(order + "u4")
        self.scale = scale
        self.limit = limit
        self.linktype = linktype

    def run(
        self,
        buf: bytes,
        pos: int,
        blen: int,
        decode: Callable[..., Any],
        flows: Flows,
        odd: list[OddFrame] | None = None,
    ) -> _PcapBatch | None:
        """Read the complete, sane records from `pos`; None when the record at `pos`
        needs the scalar loop."""
        native_loops = (native.native_pcap_records is not None
                        and native.native_frame_columns is not None)
        found = self._native_records(buf, pos, blen) if native_loops else \
            self._numpy_records(buf, pos, blen)
        if found is None:
            return None
        o, ends, stamps, orig, rows = found
        ts = stamps[:, 0].astype(np.float64) + stamps[:, 1].astype(np.float64) * self.scale
        k = len(o)
        frames = Frames(buf, self.linktype, o + 16, ends, ts, orig, np.arange(k, dtype=np.int64))
        columns, packets, skipped = _frame_columns(frames, rows, 16, decode, flows, odd)
        return int(ends[-1]), k, packets, skipped, columns

    def _numpy_records(self, buf: bytes, pos: int, blen: int) -> _Records | None:
        """The run of complete, sane records at `pos`: (offsets, ends, seconds and fractions,
        wire lengths, the header rows the numpy columns read); None when there is none."""
        o = native.walks()[0](buf, pos, _BATCH, self.big)
        width = 16 + LINK_BYTES + _IP_BYTES
        rows = _take(buf, np.minimum(o, blen), width)
        hdr = np.ascontiguousarray(rows[:, :16]).view(self.u32).astype(np.int64)
        ends = o + 16 + hdr[:, 2]
        k = _first_bad((hdr[:, 2] <= self.limit) & (ends <= blen))
        if k == 0:
            return None
        return o[:k], ends[:k], hdr[:k, :2], hdr[:k, 3], rows[:k]

    def _native_records(self, buf: bytes, pos: int, blen: int) -> _Records | None:
        """`_numpy_records` with the walk and the record checks in one C loop (the numpy
        checks are its reference); no header rows (the native columns need none)."""
        assert native.native_pcap_records is not None
        fields = np.empty((5, _BATCH), dtype=np.int64)
        k = native.native_pcap_records(memoryview(buf)[:blen], pos, _BATCH, self.big,
                                       self.limit, *fields)
        if k == 0:
            return None
        o, sec, frac, incl, orig = fields[:, :k]
        return o, o + 16 + incl, np.stack([sec, frac], axis=1), orig, None


class PcapngBatcher:
    """Bulk reader of runs of pcapng enhanced packet blocks."""

    def run(
        self,
        buf: bytes,
        pos: int,
        blen: int,
        order: str,
        ifaces: list[tuple[int, float, float, int]],
        decoders: dict[int, Callable[..., Any]],
        flows: Flows,
        odd: list[OddFrame] | None = None,
    ) -> tuple[int, int, int, int, list[IPColumns], float] | None:
        """Read the run of complete, sane EPBs at `pos`; None when the block at `pos`
        needs the scalar loop. Also returns the timestamp of the last packet."""
        if not ifaces:
            return None
        o = native.walks()[1](buf, pos, _BATCH, order == ">")
        if not len(o):
            return None
        width = 28 + LINK_BYTES + _IP_BYTES
        rows = _take(buf, o, width)
        u32 = np.dtype(order + "u4")
        hdr = np.ascontiguousarray(rows[:, :28]).view(u32).astype(np.int64)
        tlen = hdr[:, 1]
        ends = o + tlen
        good = (tlen >= 32) & (tlen & 3 == 0) & (tlen <= MAX_BLOCK) & (ends <= blen)
        trailer = _take(buf, np.where(good, ends - 4, 0), 4).view(u32)[:, 0]
        good &= trailer == tlen
        iface = hdr[:, 2]
        good &= (iface < len(ifaces)) & (o + 28 + hdr[:, 5] <= ends - 4)
        k = _first_bad(good)
        if k == 0:
            return None
        if k < len(o):
            o, rows, hdr, ends, iface = o[:k], rows[:k], hdr[:k], ends[:k], iface[:k]
        links = np.array([i[0] for i in ifaces], dtype=np.int64)[iface]
        units = np.array([i[1] for i in ifaces], dtype=np.float64)[iface]
        tsoff = np.array([i[2] for i in ifaces], dtype=np.float64)[iface]
        hi, lo = hdr[:, 3].astype(np.uint64), hdr[:, 4].astype(np.uint64)
        stamp = ((hi << np.uint64(32)) | lo).astype(np.float64)
        ts = stamp / units + tsoff
        starts = o + 28
        fends = starts + hdr[:, 5]
        orig = hdr[:, 6]
        columns: list[IPColumns] = []
        packets = skipped = 0
        kinds = np.unique(links)
        everything = np.arange(k, dtype=np.int64)
        for lt in kinds.tolist():
            sel = slice(None) if len(kinds) == 1 else np.flatnonzero(links == lt)
            frames = Frames(buf, lt, starts[sel], fends[sel], ts[sel], orig[sel],
                            everything[sel])
            cols, npk, nsk = _frame_columns(frames, rows[sel], 28, decoders[lt], flows, odd)
            columns += cols
            packets += npk
            skipped += nsk
        return int(ends[-1]), k, packets, skipped, columns, float(ts[-1])
