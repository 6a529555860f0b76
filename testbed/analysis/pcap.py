"""Streaming pcap / pcapng header reader (pure Python, no dpkt/scapy).

Contract:
- `read_packets(path)` yields one `Packet` per IPv4/IPv6 frame, in file order, in
  constant memory. Non-IP frames (ARP, LLDP, ...) are skipped and counted.
- A file that is not a capture, or uses a link type we cannot decode, raises
  `CaptureFormatError` (file name + what was found). Unreadable files raise
  `AnalysisError`.
- Damage (truncation, absurd lengths, broken blocks) never raises: reading stops at
  the damage, every packet before it is yielded, and a warning naming the byte offset
  and packet number is recorded on `PcapReader.warnings` (and passed to `on_warning`).

Fast paths: `PcapReader.iter_raw()` yields plain tuples (packed addresses, protocol
number) instead of `Packet`s; `PcapReader.flows()` aggregates per-direction 5-tuple
counters inside the read loop (one struct call per plain IPv4 TCP/UDP frame) and is the
reference for `PcapReader.flow_batches()`, the vectorised path `extract_endpoints` uses
(numpy columns per batch of records; see "vectorised fast path" below).
`PcapReader.iter_payloads()` yields TCP/UDP payloads (for name, canary and timing
analysis) through the same reading loop. Simple packet blocks (pcapng
SPB) carry no timestamp: they get the last timestamp seen in the file.
"""

from __future__ import annotations

import os
import socket
import struct
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
from numpy.typing import NDArray

from testbed._errors import AnalysisError, CaptureFormatError

__all__ = [
    "LINKTYPE_NAMES",
    "FlowKey",
    "Flows",
    "IPColumns",
    "Packet",
    "PayloadPacket",
    "PcapReader",
    "RawPacket",
    "proto_name",
    "read_packets",
]


class Packet(NamedTuple):
    """One IP packet's headers. Ports are 0 when the protocol has none (or a non-first
    fragment); `length` is the original wire length of the frame."""

    ts: float
    src: str
    dst: str
    proto: str
    sport: int
    dport: int
    length: int


# (ts, src packed, dst packed, proto number, sport, dport, wire length)
RawPacket = tuple[float, bytes, bytes, int, int, int, int]

_CHUNK = 1 << 20
# Largest frame we accept; anything above is damage (a 64 KiB IP packet plus link and
# capture headers fits comfortably; jumbo/TSO frames up to 256 KiB are still accepted).
MAX_FRAME = 1 << 18
# Largest pcapng block: frame + generous room for options.
MAX_BLOCK = MAX_FRAME + (1 << 16)

LINKTYPE_NAMES = {
    0: "BSD loopback",
    1: "Ethernet",
    12: "raw IP",
    101: "raw IP",
    113: "Linux SLL",
    228: "raw IPv4",
    229: "raw IPv6",
    276: "Linux SLL2",
}

_PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}


def proto_name(number: int) -> str:
    """'tcp', 'udp', 'icmp', 'icmpv6', or the protocol number as a string."""
    name = _PROTO_NAMES.get(number)
    return name if name is not None else str(number)


_H = struct.Struct("!H")
_HH = struct.Struct("!HH")
_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_VLAN_TAGS = frozenset((0x8100, 0x88A8, 0x9100, 0x9200))
# IPv6 extension headers that carry a (next header, length) pair.
_V6_EXT = frozenset((0, 43, 60, 135, 139, 140, 253, 254))
_BSD_AF_INET6 = frozenset((10, 24, 28, 30))

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_OTHER_MAGICS = {
    b"\x34\xcd\xb2\xa1": "a modified (Kuznetzov) pcap, which is not supported",
    b"\xa1\xb2\xcd\x34": "a modified (Kuznetzov) pcap, which is not supported",
    b"\x1f\x8b": "a gzip-compressed file (decompress it first)",
    b"\x28\xb5\x2f\xfd": "a zstd-compressed file (decompress it first)",
    b"PK\x03\x04": "a zip archive",
}


def _decode_ip(buf: bytes, off: int, end: int, ts: float, length: int) -> RawPacket | None:
    """Decode the IPv4/IPv6 header at buf[off:end]; None when it is not IP or too short."""
    if off >= end:
        return None
    version = buf[off] >> 4
    if version == 4:
        if end - off < 20:
            return None
        ihl = (buf[off] & 0x0F) << 2
        proto = buf[off + 9]
        src = buf[off + 12 : off + 16]
        dst = buf[off + 16 : off + 20]
        if _H.unpack_from(buf, off + 6)[0] & 0x1FFF:  # non-first fragment: no ports
            return (ts, src, dst, proto, 0, 0, length)
        p = off + ihl
    elif version == 6:
        if end - off < 40:
            return None
        proto = buf[off + 6]
        src = buf[off + 8 : off + 24]
        dst = buf[off + 24 : off + 40]
        p = off + 40
        while True:
            if proto in _V6_EXT:
                if p + 2 > end:
                    return (ts, src, dst, proto, 0, 0, length)
                proto = buf[p]
                p += (buf[p + 1] + 1) << 3
            elif proto == 44:  # fragment
                if p + 8 > end:
                    return (ts, src, dst, proto, 0, 0, length)
                nxt = buf[p]
                if _H.unpack_from(buf, p + 2)[0] & 0xFFF8:
                    return (ts, src, dst, nxt, 0, 0, length)
                proto = nxt
                p += 8
            elif proto == 51:  # AH
                if p + 2 > end:
                    return (ts, src, dst, proto, 0, 0, length)
                proto = buf[p]
                p += (buf[p + 1] + 2) << 2
            else:
                break
    else:
        return None
    if (proto == 6 or proto == 17 or proto == 132) and p + 4 <= end:
        sport, dport = _HH.unpack_from(buf, p)
        return (ts, src, dst, proto, sport, dport, length)
    return (ts, src, dst, proto, 0, 0, length)


def _l3_offset(linktype: int, buf: bytes, off: int, end: int) -> int:
    """Offset of the IP header in a frame, or -1 when the frame carries no IP."""
    if linktype == 1:
        if end - off < 14:
            return -1
        etype = _H.unpack_from(buf, off + 12)[0]
        p = off + 14
        while etype in _VLAN_TAGS:
            if p + 4 > end:
                return -1
            etype = _H.unpack_from(buf, p + 2)[0]
            p += 4
        return p if etype == _ETHERTYPE_IPV4 or etype == _ETHERTYPE_IPV6 else -1
    if linktype == 113:
        if end - off < 16:
            return -1
        etype = _H.unpack_from(buf, off + 14)[0]
        return off + 16 if etype == _ETHERTYPE_IPV4 or etype == _ETHERTYPE_IPV6 else -1
    if linktype == 276:
        if end - off < 20:
            return -1
        etype = _H.unpack_from(buf, off)[0]
        return off + 20 if etype == _ETHERTYPE_IPV4 or etype == _ETHERTYPE_IPV6 else -1
    if linktype == 101 or linktype == 228 or linktype == 229 or linktype == 12:
        return off
    if linktype == 0:
        if end - off < 4:
            return -1
        fam = int.from_bytes(buf[off : off + 4], "little")
        if fam > 0xFFFF:
            fam = int.from_bytes(buf[off : off + 4], "big")
        return off + 4 if fam == 2 or fam in _BSD_AF_INET6 else -1
    return -1


FrameDecoder = Callable[[bytes, int, int, float, int], "RawPacket | None"]


def _frame_decoder(linktype: int) -> FrameDecoder:
    """A one-call decoder for `linktype` frames, with a fused fast path for IPv4."""
    if linktype == 1:
        etype_off, ip_off = 12, 14
    elif linktype == 113:
        etype_off, ip_off = 14, 16
    elif linktype == 276:
        etype_off, ip_off = 0, 20
    else:
        etype_off, ip_off = -1, 0 if linktype in (101, 228, 229, 12) else 4
    if etype_off >= 0:
        gap = ip_off - etype_off - 2
        fused = struct.Struct(
            f"!{etype_off}xH{gap}xB5xHxB2x4s4s" if gap else f"!{etype_off}xHB5xHxB2x4s4s"
        )
    else:
        fused = struct.Struct(f"!{ip_off}xB5xHxB2x4s4s")
    need = ip_off + 20
    unpack = fused.unpack_from
    ports = _HH.unpack_from
    generic = _decode_ip
    l3 = _l3_offset

    def slow(buf: bytes, p: int, end: int, ts: float, length: int) -> RawPacket | None:
        off = l3(linktype, buf, p, end)
        return None if off < 0 else generic(buf, off, end, ts, length)

    if etype_off >= 0:

        def decode(buf: bytes, p: int, end: int, ts: float, length: int) -> RawPacket | None:
            if end - p >= need:
                etype, vihl, frag, proto, src, dst = unpack(buf, p)
                if etype == 0x0800 and vihl >> 4 == 4:
                    if frag & 0x1FFF:
                        return (ts, src, dst, proto, 0, 0, length)
                    q = p + ip_off + ((vihl & 15) << 2)
                    if (proto == 6 or proto == 17 or proto == 132) and q + 4 <= end:
                        sport, dport = ports(buf, q)
                        return (ts, src, dst, proto, sport, dport, length)
                    return (ts, src, dst, proto, 0, 0, length)
            return slow(buf, p, end, ts, length)

    else:

        def decode(buf: bytes, p: int, end: int, ts: float, length: int) -> RawPacket | None:
            if end - p >= need:
                vihl, frag, proto, src, dst = unpack(buf, p)
                if vihl >> 4 == 4:
                    if frag & 0x1FFF:
                        return (ts, src, dst, proto, 0, 0, length)
                    q = p + ip_off + ((vihl & 15) << 2)
                    if (proto == 6 or proto == 17 or proto == 132) and q + 4 <= end:
                        sport, dport = ports(buf, q)
                        return (ts, src, dst, proto, sport, dport, length)
                    return (ts, src, dst, proto, 0, 0, length)
            return slow(buf, p, end, ts, length)

    return decode


# (ts, src packed, dst packed, proto 6/17, sport, dport, L4 payload, TCP flags (0 for UDP))
PayloadPacket = tuple[float, bytes, bytes, int, int, int, bytes, int]
PayloadDecoder = Callable[[bytes, int, int, float, int], "PayloadPacket | None"]

# An IP packet without a TCP/UDP payload (other protocol, later fragment, cut header):
# counted as a packet, not yielded by `iter_payloads`.
_NO_L4: PayloadPacket = (0.0, b"", b"", 0, 0, 0, b"", 0)
_TCP_HDR = struct.Struct("!HH8xBB")  # sport, dport, data offset, flags


def _l4_payload(
    buf: bytes, q: int, end: int, ts: float, src: bytes, dst: bytes, proto: int
) -> PayloadPacket:
    if proto == 6:
        if q + 20 > end:
            return _NO_L4
        sport, dport, doff, flags = _TCP_HDR.unpack_from(buf, q)
        if doff < 0x50:  # header shorter than 20 bytes: damaged
            return _NO_L4
        return (ts, src, dst, 6, sport, dport, buf[q + ((doff >> 4) << 2) : end], flags)
    if proto == 17:
        if q + 8 > end:
            return _NO_L4
        sport, dport = _HH.unpack_from(buf, q)
        return (ts, src, dst, 17, sport, dport, buf[q + 8 : end], 0)
    return _NO_L4


def _decode_ip_payload(buf: bytes, off: int, end: int, ts: float) -> PayloadPacket | None:
    """Like `_decode_ip`, but returns the TCP/UDP payload (trimmed to the IP length, so
    Ethernet padding is dropped); `_NO_L4` for IP packets without one."""
    if off >= end:
        return None
    version = buf[off] >> 4
    if version == 4:
        if end - off < 20:
            return None
        ihl = (buf[off] & 0x0F) << 2
        total = _H.unpack_from(buf, off + 2)[0]
        if total >= 20 and off + total < end:
            end = off + total
        proto = buf[off + 9]
        src = buf[off + 12 : off + 16]
        dst = buf[off + 16 : off + 20]
        if _H.unpack_from(buf, off + 6)[0] & 0x1FFF:
            return _NO_L4
        p = off + ihl
    elif version == 6:
        if end - off < 40:
            return None
        plen = _H.unpack_from(buf, off + 4)[0]
        if plen and off + 40 + plen < end:
            end = off + 40 + plen
        proto = buf[off + 6]
        src = buf[off + 8 : off + 24]
        dst = buf[off + 24 : off + 40]
        p = off + 40
        while True:
            if proto in _V6_EXT:
                if p + 2 > end:
                    return _NO_L4
                proto = buf[p]
                p += (buf[p + 1] + 1) << 3
            elif proto == 44:  # fragment
                if p + 8 > end or _H.unpack_from(buf, p + 2)[0] & 0xFFF8:
                    return _NO_L4
                proto = buf[p]
                p += 8
            elif proto == 51:  # AH
                if p + 2 > end:
                    return _NO_L4
                proto = buf[p]
                p += (buf[p + 1] + 2) << 2
            else:
                break
    else:
        return None
    return _l4_payload(buf, p, end, ts, src, dst, proto)


def _payload_decoder(linktype: int) -> PayloadDecoder:
    """`_frame_decoder`'s counterpart for `iter_payloads`, with the same fused IPv4 path."""
    if linktype == 1:
        etype_off, ip_off = 12, 14
    elif linktype == 113:
        etype_off, ip_off = 14, 16
    elif linktype == 276:
        etype_off, ip_off = 0, 20
    else:
        etype_off, ip_off = -1, 0 if linktype in (101, 228, 229, 12) else 4
    # (etype,) version/ihl, total length, fragment, proto, src, dst
    ipfmt = "BxH2xHxB2x4s4s"
    if etype_off >= 0:
        gap = ip_off - etype_off - 2
        fused = struct.Struct(f"!{etype_off}xH{gap}x{ipfmt}" if gap else f"!{etype_off}xH{ipfmt}")
    else:
        fused = struct.Struct(f"!{ip_off}x{ipfmt}")
    need = ip_off + 20
    unpack = fused.unpack_from
    l4 = _l4_payload
    generic = _decode_ip_payload
    l3 = _l3_offset

    def slow(buf: bytes, p: int, end: int, ts: float) -> PayloadPacket | None:
        off = l3(linktype, buf, p, end)
        return None if off < 0 else generic(buf, off, end, ts)

    if etype_off >= 0:

        def decode(buf: bytes, p: int, end: int, ts: float, length: int) -> PayloadPacket | None:
            if end - p >= need:
                etype, vihl, total, frag, proto, src, dst = unpack(buf, p)
                if etype == 0x0800 and vihl >> 4 == 4:
                    if frag & 0x1FFF:
                        return _NO_L4
                    ip = p + ip_off
                    if total >= 20 and ip + total < end:
                        end = ip + total
                    return l4(buf, ip + ((vihl & 15) << 2), end, ts, src, dst, proto)
            return slow(buf, p, end, ts)

    else:

        def decode(buf: bytes, p: int, end: int, ts: float, length: int) -> PayloadPacket | None:
            if end - p >= need:
                vihl, total, frag, proto, src, dst = unpack(buf, p)
                if vihl >> 4 == 4:
                    if frag & 0x1FFF:
                        return _NO_L4
                    ip = p + ip_off
                    if total >= 20 and ip + total < end:
                        end = ip + total
                    return l4(buf, ip + ((vihl & 15) << 2), end, ts, src, dst, proto)
            return slow(buf, p, end, ts)

    return decode


FlowKey = tuple[bytes, bytes, int, int, int]  # (src, dst, proto, sport, dport), packed
Flows = dict[FlowKey, list[float]]  # -> [packets, bytes, first_seen, last_seen]
FastAdder = Callable[[bytes, int, int, float, int], bool]


def _fast_adder(linktype: int, tables: dict[int, dict[bytes, list[float]]]) -> FastAdder:
    """Aggregate a plain IPv4 (no options, not a later fragment) TCP/UDP frame into
    `tables[proto][src+dst+ports]` with one struct call; False when it is not one."""
    if linktype == 1:
        fmt, ip_off = "!12xHB5xHxB2x12s", 14
    elif linktype == 113:
        fmt, ip_off = "!14xHB5xHxB2x12s", 16
    elif linktype == 276:
        fmt, ip_off = "!H18xB5xHxB2x12s", 20
    elif linktype in (101, 228, 12):
        fmt, ip_off = "!B5xHxB2x12s", 0
    else:
        return lambda buf, p, end, ts, length: False
    unpack = struct.Struct(fmt).unpack_from
    need = ip_off + 24
    tcp = tables.setdefault(6, {})
    udp = tables.setdefault(17, {})

    def add(
        buf: bytes, p: int, end: int, ts: float, length: int, has_etype: bool = ip_off > 0
    ) -> bool:
        if end - p < need:
            return False
        if has_etype:
            etype, vihl, frag, proto, key = unpack(buf, p)
            if etype != 0x0800:
                return False
        else:
            vihl, frag, proto, key = unpack(buf, p)
        if vihl != 0x45 or frag & 0x1FFF:
            return False
        if proto == 6:
            table = tcp
        elif proto == 17:
            table = udp
        else:
            return False
        st = table.get(key)
        if st is None:
            table[key] = [1, length, ts, ts]
        else:
            st[0] += 1
            st[1] += length
            if ts > st[3]:
                st[3] = ts
            elif ts < st[2]:
                st[2] = ts
        return True

    return add


def _add_generic(flows: Flows, pkt: RawPacket) -> None:
    ts = pkt[0]
    length = pkt[6]
    key = (pkt[1], pkt[2], pkt[3], pkt[4], pkt[5])
    st = flows.get(key)
    if st is None:
        flows[key] = [1, length, ts, ts]
    else:
        st[0] += 1
        st[1] += length
        if ts > st[3]:
            st[3] = ts
        elif ts < st[2]:
            st[2] = ts


def _merge_fast(flows: Flows, tables: dict[int, dict[bytes, list[float]]]) -> None:
    for proto, table in tables.items():
        for k, st in table.items():
            key = (k[0:4], k[4:8], proto, (k[8] << 8) | k[9], (k[10] << 8) | k[11])
            old = flows.get(key)
            if old is None:
                flows[key] = st
            else:
                old[0] += st[0]
                old[1] += st[1]
                old[2] = min(old[2], st[2])
                old[3] = max(old[3], st[3])


# -- vectorised fast path -----------------------------------------------------------------
#
# `PcapReader.flow_batches()` reads the capture in 16 MiB chunks. At each record
# boundary a batcher walks the record (or EPB) headers in a tight Python loop that only
# collects offsets into an array('q') (one unpack per record, at most _BATCH records),
# then everything else is numpy: one fixed-width gather of each record's header, link
# header and the first 64 bytes of its IP header (a strided void view over the chunk, so a
# row is one memcpy), the validity checks of the scalar loop (lengths, limits, trailing
# block lengths, interfaces), link-layer offsets per link type (Ethernet with up to two
# VLAN tags, SLL, SLL2, raw IP, BSD loopback), IPv4/IPv6 header fields and TCP/UDP/SCTP
# ports. The batch stops before the first record the scalar loop would treat specially
# (damage, a partial record, a pcapng block that is not an EPB, an EPB naming an unknown
# interface or claiming too many bytes): that record is then read by the unchanged scalar
# loop, which keeps every warning, error and counter identical. Inside a batch, frames the
# columns do not cover (more than two VLAN tags, IPv6 extension headers and fragments)
# are decoded one by one by the scalar decoder and aggregated into the `Flows` dict.

_FAST_CHUNK = 1 << 22
_BATCH = 1 << 16  # most records per batch: bounds the memory of one batch
_IP_BYTES = 64  # IPv4 header with options (<= 60) + 4 port bytes; IPv6 40 + 4
_LINK_BYTES = 24  # link header room: Ethernet + 2 VLAN tags (22), SLL2 (20)
_LINK_BASE = {0: 4, 1: 14, 12: 0, 101: 0, 113: 16, 228: 0, 229: 0, 276: 20}

_VLAN_TABLE = np.zeros(1 << 16, dtype=bool)
_VLAN_TABLE[list(_VLAN_TAGS)] = True
_IP_ETHERTYPE = np.zeros(1 << 16, dtype=bool)
_IP_ETHERTYPE[[_ETHERTYPE_IPV4, _ETHERTYPE_IPV6]] = True
_V6_SLOW = np.zeros(256, dtype=bool)  # next headers the scalar decoder walks
_V6_SLOW[[*_V6_EXT, 44, 51]] = True
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


def _u16(h: NDArray[np.uint8], col: int) -> I64:
    return (h[:, col].astype(np.int64) << 8) | h[:, col + 1]


def _link_offsets(linktype: int, h: NDArray[np.uint8], flen: I64) -> I64:
    """Per frame, `_l3_offset` relative to the frame start: the IP header offset, -1 for
    a frame without IP, -2 for one the scalar decoder must read (3+ VLAN tags).
    `h` holds each frame's first _LINK_BYTES bytes; `flen` the captured lengths."""
    n = len(flen)
    if linktype == 1:
        etype = _u16(h, 12)
        ok = flen >= 14
        l3 = np.full(n, 14, dtype=np.int64)
        slow = None
        tagged = _VLAN_TABLE[etype]
        if tagged.any():
            ok &= ~tagged | (flen >= 18)
            etype = np.where(tagged, _u16(h, 16), etype)
            l3[tagged] = 18
            tagged &= ok & _VLAN_TABLE[etype]
            ok &= ~tagged | (flen >= 22)
            etype = np.where(tagged, _u16(h, 20), etype)
            l3[tagged] = 22
            slow = tagged & ok & _VLAN_TABLE[etype]
        out = np.where(ok & _IP_ETHERTYPE[etype], l3, -1)
        if slow is not None:
            out[slow] = -2
        return out
    if linktype == 113:
        ok = (flen >= 16) & _IP_ETHERTYPE[_u16(h, 14)]
        return np.where(ok, 16, -1)
    if linktype == 276:
        ok = (flen >= 20) & _IP_ETHERTYPE[_u16(h, 0)]
        return np.where(ok, 20, -1)
    if linktype in (12, 101, 228, 229):
        return np.zeros(n, dtype=np.int64)
    if linktype == 0:
        fam = np.ascontiguousarray(h[:, :4]).view("<u4")[:, 0].astype(np.int64)
        big = np.ascontiguousarray(h[:, :4]).view(">u4")[:, 0].astype(np.int64)
        fam = np.where(fam > 0xFFFF, big, fam)
        ok = (flen >= 4) & ((fam == 2) | np.isin(fam, list(_BSD_AF_INET6)))
        return np.where(ok, 4, -1)
    return np.full(n, -2, dtype=np.int64)


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


def _frame_columns(
    buf: bytes,
    rows: NDArray[np.uint8],
    hoff: int,
    starts: I64,
    ends: I64,
    ts: NDArray[np.float64],
    orig: I64,
    linktype: int,
    decode: Callable[..., Any],
    flows: Flows,
    index: I64,
    odd: list[OddFrame] | None,
) -> tuple[list[IPColumns], int, int]:
    """Decode a batch of frames of one link type: (columns, IP packets, skipped frames).
    `rows[:, hoff:]` holds each frame's first _LINK_BYTES + _IP_BYTES bytes, `starts` /
    `ends` its bounds in `buf`. Frames the columns cannot express go through `decode`
    (the scalar decoder) into `flows` (and, when `odd` is a list, onto it)."""
    flen = ends - starts
    l3 = _link_offsets(linktype, rows[:, hoff : hoff + _LINK_BYTES], flen)
    base = hoff + _LINK_BASE.get(linktype, 0)
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
            sport, dport = _u16(q, 20), _u16(q, 22)
        else:
            flat = q.reshape(-1)
            at = np.arange(len(q), dtype=np.int64) * _IP_BYTES + ihl
            sport = (flat[at].astype(np.int64) << 8) | flat[at + 1]
            dport = (flat[at + 2].astype(np.int64) << 8) | flat[at + 3]
        ipat = starts[r4] + l3[r4]
        total = _u16(q, 2)
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
        plen = _u16(q, 4)
        tend = np.where((plen > 0) & (plen + 40 < avail[r6]), ipat + 40 + plen, ends[r6])
        forty = np.full(len(r6), 40, dtype=np.int64)
        flags, poff = _l4_columns(buf, q, forty, ipat + 40, tend, proto, None)
        columns.append(
            IPColumns(
                6,
                addr[:, 0:2],
                addr[:, 2:4],
                proto,
                np.where(ports, _u16(q, 40), 0),
                np.where(ports, _u16(q, 42), 0),
                ts[r6],
                orig[r6],
                index[r6],
                flags,
                poff,
                tend,
            )
        )
    packets = int(r4.size + r6.size)
    skipped = len(flen) - packets - len(slow)
    if len(slow):
        add_generic = _add_generic
        for i in slow.tolist():
            pkt = decode(buf, int(starts[i]), int(ends[i]), float(ts[i]), int(orig[i]))
            if pkt is None:
                skipped += 1
            else:
                packets += 1
                add_generic(flows, pkt)
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


class _PcapBatcher:
    """Bulk reader of classic pcap records (see the fast-path notes above)."""

    def __init__(self, order: str, scale: float, limit: int, linktype: int) -> None:
        self.incl = struct.Struct(order + "8xI").unpack_from
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
        offs = array("q")
        app = offs.append
        incl = self.incl
        p = pos
        try:  # unrolled: the loop itself costs as much as the work
            for _ in range(_BATCH >> 3):
                app(p)
                p += 16 + incl(buf, p)[0]
                app(p)
                p += 16 + incl(buf, p)[0]
                app(p)
                p += 16 + incl(buf, p)[0]
                app(p)
                p += 16 + incl(buf, p)[0]
                app(p)
                p += 16 + incl(buf, p)[0]
                app(p)
                p += 16 + incl(buf, p)[0]
                app(p)
                p += 16 + incl(buf, p)[0]
                app(p)
                p += 16 + incl(buf, p)[0]
        except struct.error:  # header past the data: checked below
            pass
        o = np.frombuffer(offs, dtype=np.int64)
        width = 16 + _LINK_BYTES + _IP_BYTES
        rows = _take(buf, np.minimum(o, blen), width)
        hdr = np.ascontiguousarray(rows[:, :16]).view(self.u32).astype(np.int64)
        ends = o + 16 + hdr[:, 2]
        k = _first_bad((hdr[:, 2] <= self.limit) & (ends <= blen))
        if k == 0:
            return None
        if k < len(o):
            o, rows, hdr, ends = o[:k], rows[:k], hdr[:k], ends[:k]
        ts = hdr[:, 0].astype(np.float64) + hdr[:, 1].astype(np.float64) * self.scale
        columns, packets, skipped = _frame_columns(
            buf, rows, 16, o + 16, ends, ts, hdr[:, 3], self.linktype, decode, flows,
            np.arange(k, dtype=np.int64), odd,
        )
        return int(ends[-1]), k, packets, skipped, columns


class _PcapngBatcher:
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
        offs = array("q")
        app = offs.append
        head = struct.Struct(order + "II").unpack_from
        p = pos
        try:
            for _ in range(_BATCH >> 2):
                btype, tlen = head(buf, p)
                if btype != 6:
                    break
                app(p)
                p += tlen
                btype, tlen = head(buf, p)
                if btype != 6:
                    break
                app(p)
                p += tlen
                btype, tlen = head(buf, p)
                if btype != 6:
                    break
                app(p)
                p += tlen
                btype, tlen = head(buf, p)
                if btype != 6:
                    break
                app(p)
                p += tlen
        except struct.error:
            pass
        if not offs:
            return None
        o = np.frombuffer(offs, dtype=np.int64)
        width = 28 + _LINK_BYTES + _IP_BYTES
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
            cols, npk, nsk = _frame_columns(
                buf,
                rows[sel],
                28,
                starts[sel],
                fends[sel],
                ts[sel],
                orig[sel],
                lt,
                decoders[lt],
                flows,
                everything[sel],
                odd,
            )
            columns += cols
            packets += npk
            skipped += nsk
        return int(ends[-1]), k, packets, skipped, columns, float(ts[-1])


class PcapReader:
    """A capture file opened for streaming.

    `PcapReader(path, on_warning=None)` sniffs the format at once (raising
    `CaptureFormatError` / `AnalysisError`); iterating yields `Packet`s, `iter_raw()`
    yields `RawPacket` tuples. After (or during) iteration: `warnings` (damage found),
    `frames` (records read), `packets` (IP packets yielded), `skipped` (non-IP frames),
    `link_types` (set of link types seen), `format` ("pcap" / "pcapng").
    Each iteration re-reads the file and resets the counters.
    """

    def __init__(
        self, path: str | os.PathLike[str], on_warning: Callable[[str], None] | None = None
    ) -> None:
        self.path = Path(path)
        self.on_warning = on_warning
        self.warnings: list[str] = []
        self.frames = 0
        self.packets = 0
        self.skipped = 0
        self.link_types: set[int] = set()
        try:
            with open(self.path, "rb") as f:
                head = f.read(4)
        except OSError as e:
            raise AnalysisError(f"cannot read capture {self.path}: {e.strerror or e}") from e
        self.format = self._sniff(head)

    # -- format detection ------------------------------------------------------------
    def _sniff(self, head: bytes) -> str:
        name = self.path.name
        if not head:
            raise CaptureFormatError(f"{name}: empty file, not a pcap/pcapng capture")
        if head in _PCAP_MAGICS:
            return "pcap"
        if head == _PCAPNG_SHB:
            return "pcapng"
        if len(head) < 4:
            if any(m.startswith(head) for m in (*_PCAP_MAGICS, _PCAPNG_SHB)):
                return "truncated"
        for magic, what in _OTHER_MAGICS.items():
            if head.startswith(magic):
                raise CaptureFormatError(f"{name}: not a pcap/pcapng capture, found {what}")
        raise CaptureFormatError(f"{name}: not a pcap/pcapng capture (magic bytes {head.hex(' ')})")

    def _warn(self, message: str) -> None:
        message = f"{self.path.name}: {message}"
        self.warnings.append(message)
        if self.on_warning is not None:
            self.on_warning(message)

    def _unknown_link(self, linktype: int, where: str) -> CaptureFormatError:
        known = ", ".join(f"{k} ({v})" for k, v in sorted(LINKTYPE_NAMES.items()))
        return CaptureFormatError(
            f"{self.path.name}: unsupported link type {linktype} {where}; supported: {known}"
        )

    # -- iteration -------------------------------------------------------------------
    def __iter__(self) -> Iterator[Packet]:
        names: dict[bytes, str] = {}
        ntop = socket.inet_ntop
        for ts, src, dst, proto, sport, dport, length in self.iter_raw():
            s = names.get(src)
            if s is None:
                s = names[src] = ntop(socket.AF_INET if len(src) == 4 else socket.AF_INET6, src)
            d = names.get(dst)
            if d is None:
                d = names[dst] = ntop(socket.AF_INET if len(dst) == 4 else socket.AF_INET6, dst)
            yield Packet(ts, s, d, proto_name(proto), sport, dport, length)

    def iter_raw(self) -> Iterator[RawPacket]:
        """Yield `(ts, src, dst, proto, sport, dport, length)` with packed addresses."""
        return self._run(None)

    def iter_payloads(self) -> Iterator[PayloadPacket]:
        """Yield `(ts, src, dst, proto, sport, dport, payload, tcp_flags)` for every TCP
        (proto 6) and UDP (proto 17) packet, IPv4 or IPv6: packed addresses, the L4
        payload as captured (trimmed to the IP length; short when the snap length cut
        it), `tcp_flags` the TCP flags byte (0 for UDP). Streams in constant memory;
        counters and damage handling as for iteration (`packets` counts every IP packet,
        yielded or not)."""
        skip = _NO_L4
        for pkt in self._run(None, _payload_decoder):
            if pkt is not skip:
                yield pkt

    def flows(self) -> Flows:
        """Fast path: read the whole file and return per-direction flow counters,
        `{(src, dst, proto, sport, dport): [packets, bytes, first_seen, last_seen]}`
        (packed addresses, protocol number), without creating per-packet objects."""
        flows: Flows = {}
        for _ in self._run(flows):
            pass
        return flows

    def flow_batches(self, flows: Flows) -> Iterator[IPColumns]:
        """Vectorised fast path: read the whole file and yield `IPColumns` (numpy
        columns, one row per IP packet) for the frames decoded in bulk; every other IP
        packet (odd frames, see `_PcapBatcher`) is aggregated into `flows` exactly as
        `flows()` does. The columns plus `flows` cover every IP packet once; counters
        and warnings are those of any other pass (`flows` is complete once the iterator
        is exhausted)."""
        return self._run(flows, fast=True)

    def scan_batches(self, flows: Flows) -> Iterator[ScanBatch]:
        """`flow_batches` for a scan that also needs payloads: each `ScanBatch` holds
        the buffer the columns' payload offsets point into, and the batch's odd IP frames
        (also aggregated into `flows`) for the scalar payload decoder. Batches come in
        file order; rows within one are ordered by `IPColumns.order` / the odd frame's
        index."""
        return self._run(flows, fast=True, scan=True)

    def _run(
        self,
        agg: Flows | None,
        make_decoder: Callable[[int], Callable[..., Any]] = _frame_decoder,
        fast: bool = False,
        scan: bool = False,
    ) -> Iterator[Any]:
        self.warnings = []
        self.frames = self.packets = self.skipped = 0
        self.link_types = set()
        if self.format == "truncated":
            self._warn("truncated at byte 0 inside the file header; no packets")
            return
        try:
            f = open(self.path, "rb")
        except OSError as e:
            raise AnalysisError(f"cannot read capture {self.path}: {e.strerror or e}") from e
        tables: dict[int, dict[bytes, list[float]]] = {}
        try:
            if self.format == "pcap":
                yield from self._iter_pcap(f, agg, tables, make_decoder, fast, scan)
            else:
                yield from self._iter_pcapng(f, agg, tables, make_decoder, fast, scan)
        finally:
            f.close()
            if agg is not None:
                _merge_fast(agg, tables)

    def _iter_pcap(
        self,
        f: BinaryIO,
        agg: Flows | None,
        tables: dict[int, dict[bytes, list[float]]],
        make_decoder: Callable[[int], Callable[..., Any]] = _frame_decoder,
        fast: bool = False,
        scan: bool = False,
    ) -> Iterator[Any]:
        read = f.read
        hdr = read(24)
        if len(hdr) < 24:
            self._warn(f"truncated at byte {len(hdr)} inside the 24-byte pcap file header")
            return
        order, scale = _PCAP_MAGICS[hdr[:4]]
        snaplen, network = struct.unpack_from(order + "II", hdr, 16)
        linktype = network & 0x0FFFFFFF
        if linktype not in LINKTYPE_NAMES:
            raise self._unknown_link(linktype, "in the pcap file header")
        self.link_types.add(linktype)
        limit = max(MAX_FRAME, min(snaplen, 1 << 24))
        rec = struct.Struct(order + "IIII")
        unpack_rec = rec.unpack_from
        decode = make_decoder(linktype)
        add = _fast_adder(linktype, tables) if agg is not None else None
        add_generic = _add_generic
        # fast mode: bigger reads, records read in bulk by the batcher
        chunk = _FAST_CHUNK if fast else _CHUNK
        batch = _PcapBatcher(order, scale, limit, linktype) if fast else None

        buf = read(chunk)
        base = 24  # file offset of buf[0]
        pos = 0
        n = 0
        frames = packets = skipped = 0
        try:
            while True:
                blen = len(buf)
                if batch is not None and agg is not None and pos + 16 <= blen:
                    odd: list[OddFrame] | None = [] if scan else None
                    done = batch.run(buf, pos, blen, decode, agg, odd)
                    if done is not None:
                        pos, nrec, npk, nsk, columns = done
                        n += nrec
                        frames += nrec
                        packets += npk
                        skipped += nsk
                        if odd is not None:
                            yield ScanBatch(buf, columns, odd)
                        else:
                            yield from columns
                        continue
                if pos + 16 > blen:
                    more = read(chunk)
                    if not more:
                        if pos < blen:
                            self._warn(
                                f"truncated at byte {base + pos}: packet {n + 1} has a "
                                f"partial record header ({blen - pos} of 16 bytes)"
                            )
                        return
                    buf = buf[pos:] + more
                    base += pos
                    pos = 0
                    continue
                sec, frac, incl, orig = unpack_rec(buf, pos)
                if incl > limit:
                    self._warn(
                        f"damaged at byte {base + pos}: packet {n + 1} claims {incl} captured "
                        f"bytes (limit {limit}); stopped reading"
                    )
                    return
                start = pos + 16
                end = start + incl
                if end > blen:
                    more = read(max(chunk, end - blen))
                    if not more:
                        self._warn(
                            f"truncated at byte {base + pos}: packet {n + 1} has "
                            f"{blen - start} of {incl} captured bytes"
                        )
                        return
                    buf = buf[pos:] + more
                    base += pos
                    pos = 0
                    continue
                n += 1
                pos = end
                frames += 1
                ts = sec + frac * scale
                if add is not None and add(buf, start, end, ts, orig):
                    packets += 1
                    if scan:
                        yield ScanBatch(buf, [], [(0, linktype, start, end, ts)])
                    continue
                pkt = decode(buf, start, end, ts, orig)
                if pkt is None:
                    skipped += 1
                    continue
                packets += 1
                if agg is not None:
                    add_generic(agg, pkt)
                    if scan:
                        yield ScanBatch(buf, [], [(0, linktype, start, end, ts)])
                    continue
                yield pkt
        finally:
            self.frames += frames
            self.packets += packets
            self.skipped += skipped

    def _iter_pcapng(
        self,
        f: BinaryIO,
        agg: Flows | None,
        tables: dict[int, dict[bytes, list[float]]],
        make_decoder: Callable[[int], Callable[..., Any]] = _frame_decoder,
        fast: bool = False,
        scan: bool = False,
    ) -> Iterator[Any]:
        read = f.read
        chunk = _FAST_CHUNK if fast else _CHUNK
        buf = read(chunk)
        base = 0
        pos = 0
        n = 0
        order = "<"
        u32 = struct.Struct("<I")
        u32x2 = struct.Struct("<II").unpack_from
        epb = struct.Struct("<IIIII")
        spb = struct.Struct("<I")
        u16 = struct.Struct("<H")
        # per interface: (linktype, units per second, offset seconds, snaplen)
        ifaces: list[tuple[int, float, float, int]] = []
        decoders = {t: make_decoder(t) for t in LINKTYPE_NAMES}
        adders = {t: _fast_adder(t, tables) for t in LINKTYPE_NAMES} if agg is not None else None
        add_generic = _add_generic
        last_ts = 0.0
        frames = packets = skipped = 0
        batch = _PcapngBatcher() if fast else None
        try:
            while True:
                blen = len(buf)
                if batch is not None and agg is not None and pos + 12 <= blen:
                    odd: list[OddFrame] | None = [] if scan else None
                    done = batch.run(buf, pos, blen, order, ifaces, decoders, agg, odd)
                    if done is not None:
                        pos, nrec, npk, nsk, columns, last_ts = done
                        n += nrec
                        frames += nrec
                        packets += npk
                        skipped += nsk
                        if odd is not None:
                            yield ScanBatch(buf, columns, odd)
                        else:
                            yield from columns
                        continue
                if pos + 12 > blen:
                    more = read(chunk)
                    if not more:
                        if pos < blen:
                            self._warn(
                                f"truncated at byte {base + pos}: partial block header after "
                                f"packet {n} ({blen - pos} bytes left)"
                            )
                        return
                    buf = buf[pos:] + more
                    base += pos
                    pos = 0
                    continue
                btype, tlen = u32x2(buf, pos)
                if btype == 0x0A0D0D0A:  # section header (palindromic: any byte order)
                    bom = buf[pos + 8 : pos + 12]
                    if bom == b"\x4d\x3c\x2b\x1a":
                        order = "<"
                    elif bom == b"\x1a\x2b\x3c\x4d":
                        order = ">"
                    else:
                        if base + pos == 0:
                            raise CaptureFormatError(
                                f"{self.path.name}: pcapng section header with bad "
                                f"byte-order magic {bom.hex(' ')}"
                            )
                        self._warn(
                            f"damaged at byte {base + pos}: section header with bad "
                            f"byte-order magic after packet {n}; stopped reading"
                        )
                        return
                    u32 = struct.Struct(order + "I")
                    u32x2 = struct.Struct(order + "II").unpack_from
                    btype, tlen = u32x2(buf, pos)
                    epb = struct.Struct(order + "IIIII")
                    spb = struct.Struct(order + "I")
                    u16 = struct.Struct(order + "H")
                    ifaces = []
                if tlen < 12 or tlen & 3 or tlen > MAX_BLOCK:
                    self._warn(
                        f"damaged at byte {base + pos}: block of type {btype:#x} after packet "
                        f"{n} claims length {tlen}; stopped reading"
                    )
                    return
                end = pos + tlen
                if end > blen:
                    more = read(max(chunk, end - blen))
                    if not more:
                        self._warn(
                            f"truncated at byte {base + pos}: block of type {btype:#x} after "
                            f"packet {n} has {blen - pos} of {tlen} bytes"
                        )
                        return
                    buf = buf[pos:] + more
                    base += pos
                    pos = 0
                    continue
                if u32.unpack_from(buf, end - 4)[0] != tlen:
                    self._warn(
                        f"damaged at byte {base + pos}: block of type {btype:#x} after packet "
                        f"{n} has mismatched trailing length; stopped reading"
                    )
                    return
                start = pos
                pos = end
                if btype == 6:  # enhanced packet block
                    if tlen < 32:
                        self._warn(f"damaged at byte {base + start}: short packet block")
                        return
                    iface, hi, lo, cap, orig = epb.unpack_from(buf, start + 8)
                    n += 1
                    frames += 1
                    if iface >= len(ifaces):
                        self._warn(
                            f"damaged at byte {base + start}: packet {n} names interface "
                            f"{iface}, which was not described; packet skipped"
                        )
                        skipped += 1
                        continue
                    linktype, units, tsoff, _snap = ifaces[iface]
                    data = start + 28
                    if data + cap > end - 4:
                        self._warn(
                            f"damaged at byte {base + start}: packet {n} claims {cap} captured "
                            f"bytes in a {tlen}-byte block; packet skipped"
                        )
                        skipped += 1
                        continue
                    last_ts = ((hi << 32) | lo) / units + tsoff
                    fend = data + cap
                elif btype == 3:  # simple packet block: interface 0, takes the last ts seen
                    orig = spb.unpack_from(buf, start + 8)[0]
                    n += 1
                    frames += 1
                    if not ifaces:
                        self._warn(
                            f"damaged at byte {base + start}: packet {n} before any interface "
                            "description; packet skipped"
                        )
                        skipped += 1
                        continue
                    linktype, units, tsoff, snap = ifaces[0]
                    data = start + 12
                    cap = min(orig, snap) if snap else orig
                    fend = min(data + cap, end - 4)
                elif btype == 1:  # interface description block
                    if tlen < 20:
                        self._warn(f"damaged at byte {base + start}: short interface block")
                        return
                    linktype = u16.unpack_from(buf, start + 8)[0]
                    snap = u32.unpack_from(buf, start + 12)[0]
                    if linktype not in LINKTYPE_NAMES:
                        raise self._unknown_link(
                            linktype, f"on interface {len(ifaces)} (block at byte {base + start})"
                        )
                    units, tsoff = self._idb_options(buf, start + 16, end - 4, order)
                    ifaces.append((linktype, units, tsoff, snap))
                    self.link_types.add(linktype)
                    continue
                elif btype == 2:  # obsolete packet block
                    if tlen < 32:
                        self._warn(f"damaged at byte {base + start}: short packet block")
                        return
                    iface = u16.unpack_from(buf, start + 8)[0]
                    _, hi, lo, cap, orig = epb.unpack_from(buf, start + 8)
                    n += 1
                    frames += 1
                    if iface >= len(ifaces) or start + 28 + cap > end - 4:
                        self._warn(f"damaged at byte {base + start}: packet {n} skipped")
                        skipped += 1
                        continue
                    linktype, units, tsoff, _snap = ifaces[iface]
                    last_ts = ((hi << 32) | lo) / units + tsoff
                    data = start + 28
                    fend = data + cap
                else:
                    continue  # SHB, name resolution, statistics, custom, ...
                if adders is not None and adders[linktype](buf, data, fend, last_ts, orig):
                    packets += 1
                    if scan:
                        yield ScanBatch(buf, [], [(0, linktype, data, fend, last_ts)])
                    continue
                pkt = decoders[linktype](buf, data, fend, last_ts, orig)
                if pkt is None:
                    skipped += 1
                    continue
                packets += 1
                if agg is not None:
                    add_generic(agg, pkt)
                    if scan:
                        yield ScanBatch(buf, [], [(0, linktype, data, fend, last_ts)])
                    continue
                yield pkt
        finally:
            self.frames += frames
            self.packets += packets
            self.skipped += skipped

    @staticmethod
    def _idb_options(buf: bytes, p: int, end: int, order: str) -> tuple[float, float]:
        """(timestamp units per second, timestamp offset seconds) from IDB options."""
        units = 1e6
        tsoff = 0.0
        hh = struct.Struct(order + "HH")
        while p + 4 <= end:
            code, olen = hh.unpack_from(buf, p)
            if code == 0:
                break
            v = p + 4
            if v + olen > end:
                break
            if code == 9 and olen >= 1:  # if_tsresol
                r = buf[v]
                units = float(2 ** (r & 0x7F)) if r & 0x80 else float(10 ** (r & 0x7F))
            elif code == 14 and olen >= 8:  # if_tsoffset
                tsoff = float(struct.unpack_from(order + "q", buf, v)[0])
            p = v + ((olen + 3) & ~3)
        return units, tsoff


def read_packets(
    path: str | os.PathLike[str], on_warning: Callable[[str], None] | None = None
) -> Iterator[Packet]:
    """Stream the IP packets of a pcap/pcapng file.

    Raises `CaptureFormatError` at once when the file is not a capture (unknown link
    types in pcapng are found, and raised, while iterating). Damage is reported through
    `on_warning(message)`; use `PcapReader` to get counters and the warnings list.
    """
    return iter(PcapReader(path, on_warning))
