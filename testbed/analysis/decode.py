"""Scalar decoding of one frame (the reference path, and the frames the vectorised path
leaves out): IP headers to `RawPacket`s, TCP/UDP payloads to `PayloadPacket`s, and the
per-flow counters. The link-layer offsets come from `linklayer.LINKS`; each decoder
has a fused IPv4 path (one struct call) built from the same table.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from .linklayer import LINKS, fused_prefix, l3_offset

__all__ = [
    "FlowKey",
    "Flows",
    "Packet",
    "PayloadPacket",
    "RawPacket",
    "add_generic",
    "frame_decoder",
    "payload_decoder",
    "proto_name",
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

_PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}


def proto_name(number: int) -> str:
    """'tcp', 'udp', 'icmp', 'icmpv6', or the protocol number as a string."""
    name = _PROTO_NAMES.get(number)
    return name if name is not None else str(number)


_H = struct.Struct("!H")
_HH = struct.Struct("!HH")
# IPv6 extension headers that carry a (next header, length) pair.
V6_EXT = frozenset((0, 43, 60, 135, 139, 140, 253, 254))


def _walk(buf: bytes, off: int, end: int, trim: bool) -> tuple[Any, ...] | None:
    """The IP header at buf[off:end]: (src, dst, protocol, L4 offset, end, whole), None
    when it is not IP or too short. `whole` is False when the walk stopped early (a later
    fragment, a cut extension header; `protocol` is then the last one read). With `trim`,
    `end` is cut to the IP length (Ethernet padding dropped)."""
    if off >= end:
        return None
    version = buf[off] >> 4
    if version == 4:
        if end - off < 20:
            return None
        if trim:
            total = _H.unpack_from(buf, off + 2)[0]
            if total >= 20 and off + total < end:
                end = off + total
        proto = buf[off + 9]
        src, dst = buf[off + 12 : off + 16], buf[off + 16 : off + 20]
        if _H.unpack_from(buf, off + 6)[0] & 0x1FFF:  # non-first fragment: no ports
            return src, dst, proto, 0, end, False
        return src, dst, proto, off + ((buf[off] & 0x0F) << 2), end, True
    if version != 6 or end - off < 40:
        return None
    if trim:
        plen = _H.unpack_from(buf, off + 4)[0]
        if plen and off + 40 + plen < end:
            end = off + 40 + plen
    proto = buf[off + 6]
    src, dst = buf[off + 8 : off + 24], buf[off + 24 : off + 40]
    p = off + 40
    while True:
        if proto in V6_EXT:
            if p + 2 > end:
                return src, dst, proto, p, end, False
            proto = buf[p]
            p += (buf[p + 1] + 1) << 3
        elif proto == 44:  # fragment
            if p + 8 > end:
                return src, dst, proto, p, end, False
            if _H.unpack_from(buf, p + 2)[0] & 0xFFF8:
                return src, dst, buf[p], p, end, False
            proto = buf[p]
            p += 8
        elif proto == 51:  # AH
            if p + 2 > end:
                return src, dst, proto, p, end, False
            proto = buf[p]
            p += (buf[p + 1] + 2) << 2
        else:
            return src, dst, proto, p, end, True


def _decode_ip(buf: bytes, off: int, end: int, ts: float, length: int) -> RawPacket | None:
    """Decode the IPv4/IPv6 header at buf[off:end]; None when it is not IP or too short."""
    w = _walk(buf, off, end, False)
    if w is None:
        return None
    src, dst, proto, p, end, whole = w
    if whole and (proto == 6 or proto == 17 or proto == 132) and p + 4 <= end:
        sport, dport = _HH.unpack_from(buf, p)
        return (ts, src, dst, proto, sport, dport, length)
    return (ts, src, dst, proto, 0, 0, length)


FrameDecoder = Callable[[bytes, int, int, float, int], "RawPacket | None"]


def frame_decoder(linktype: int) -> FrameDecoder:
    """A one-call decoder for `linktype` frames, with a fused fast path for IPv4."""
    link = LINKS[linktype]
    ip_off = link.ip_at
    unpack = struct.Struct(f"!{fused_prefix(link)}B5xHxB2x4s4s").unpack_from
    need = ip_off + 20
    ports = _HH.unpack_from
    generic = _decode_ip
    l3 = l3_offset

    def decode(buf: bytes, p: int, end: int, ts: float, length: int) -> RawPacket | None:
        if end - p >= need:
            etype, vihl, frag, proto, src, dst = unpack(buf, p)
            if (etype == 0x0800 or etype == b"") and vihl >> 4 == 4:
                if frag & 0x1FFF:
                    return (ts, src, dst, proto, 0, 0, length)
                q = p + ip_off + ((vihl & 15) << 2)
                if (proto == 6 or proto == 17 or proto == 132) and q + 4 <= end:
                    sport, dport = ports(buf, q)
                    return (ts, src, dst, proto, sport, dport, length)
                return (ts, src, dst, proto, 0, 0, length)
        off = l3(linktype, buf, p, end)
        return None if off < 0 else generic(buf, off, end, ts, length)

    return decode


# (ts, src packed, dst packed, proto 6/17, sport, dport, L4 payload, TCP flags (0 for UDP))
PayloadPacket = tuple[float, bytes, bytes, int, int, int, bytes, int]
PayloadDecoder = Callable[[bytes, int, int, float, int], "PayloadPacket | None"]

# An IP packet without a TCP/UDP payload (other protocol, later fragment, cut header):
# counted as a packet, not yielded by `iter_payloads`.
NO_L4: PayloadPacket = (0.0, b"", b"", 0, 0, 0, b"", 0)
_TCP_HDR = struct.Struct("!HH8xBB")  # sport, dport, data offset, flags


def _l4_payload(
    buf: bytes, q: int, end: int, ts: float, src: bytes, dst: bytes, proto: int
) -> PayloadPacket:
    if proto == 6:
        if q + 20 > end:
            return NO_L4
        sport, dport, doff, flags = _TCP_HDR.unpack_from(buf, q)
        if doff < 0x50:  # header shorter than 20 bytes: damaged
            return NO_L4
        return (ts, src, dst, 6, sport, dport, buf[q + ((doff >> 4) << 2) : end], flags)
    if proto == 17:
        if q + 8 > end:
            return NO_L4
        sport, dport = _HH.unpack_from(buf, q)
        return (ts, src, dst, 17, sport, dport, buf[q + 8 : end], 0)
    return NO_L4


def _decode_ip_payload(buf: bytes, off: int, end: int, ts: float) -> PayloadPacket | None:
    """Like `_decode_ip`, but returns the TCP/UDP payload (trimmed to the IP length, so
    Ethernet padding is dropped); `NO_L4` for IP packets without one."""
    w = _walk(buf, off, end, True)
    if w is None:
        return None
    src, dst, proto, p, end, whole = w
    return _l4_payload(buf, p, end, ts, src, dst, proto) if whole else NO_L4


def payload_decoder(linktype: int) -> PayloadDecoder:
    """`frame_decoder`'s counterpart for payloads, with the same fused IPv4 path."""
    link = LINKS[linktype]
    ip_off = link.ip_at
    # (etype,) version/ihl, total length, fragment, proto, src, dst
    unpack = struct.Struct(f"!{fused_prefix(link)}BxH2xHxB2x4s4s").unpack_from
    need = ip_off + 20
    l4 = _l4_payload
    generic = _decode_ip_payload
    l3 = l3_offset

    def decode(buf: bytes, p: int, end: int, ts: float, length: int) -> PayloadPacket | None:
        if end - p >= need:
            etype, vihl, total, frag, proto, src, dst = unpack(buf, p)
            if (etype == 0x0800 or etype == b"") and vihl >> 4 == 4:
                if frag & 0x1FFF:
                    return NO_L4
                ip = p + ip_off
                if total >= 20 and ip + total < end:
                    end = ip + total
                return l4(buf, ip + ((vihl & 15) << 2), end, ts, src, dst, proto)
        off = l3(linktype, buf, p, end)
        return None if off < 0 else generic(buf, off, end, ts)

    return decode


FlowKey = tuple[bytes, bytes, int, int, int]  # (src, dst, proto, sport, dport), packed
Flows = dict[FlowKey, list[float]]  # -> [packets, bytes, first_seen, last_seen]


def add_generic(flows: Flows, pkt: RawPacket) -> None:
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
