"""Link-layer layouts: ONE table (`LINKS`) from which every decoder takes its offsets.

A layout says where the IP header starts in a frame, where the ethertype is (if any),
whether VLAN tags may follow it (Ethernet) and whether a 4-byte address family leads
(BSD loopback). Derived here: the names (`LINKTYPE_NAMES`), the scalar IP offset
(`l3_offset`), the struct prefix of the fused decoders (`fused_prefix`) and the
vectorised IP offsets (`link_offsets`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["LINKS", "LINKTYPE_NAMES", "Link", "fused_prefix", "l3_offset", "link_offsets"]

I64 = NDArray[np.int64]


@dataclass(frozen=True)
class Link:
    name: str
    ip_at: int  # IP header offset in an untagged frame
    etype_at: int = -1  # ethertype offset; -1: the link carries IP only
    vlan: bool = False  # 802.1Q/802.1ad tags may follow the ethertype
    bsd: bool = False  # a 4-byte address family in either byte order leads


LINKS = {
    0: Link("BSD loopback", 4, bsd=True),
    1: Link("Ethernet", 14, 12, vlan=True),
    12: Link("raw IP", 0),
    101: Link("raw IP", 0),
    113: Link("Linux SLL", 16, 14),
    228: Link("raw IPv4", 0),
    229: Link("raw IPv6", 0),
    276: Link("Linux SLL2", 20, 0),
}
LINKTYPE_NAMES = {number: link.name for number, link in LINKS.items()}

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
VLAN_TAGS = frozenset((0x8100, 0x88A8, 0x9100, 0x9200))
BSD_AF_INET6 = frozenset((10, 24, 28, 30))
_IP_TYPES = (ETHERTYPE_IPV4, ETHERTYPE_IPV6)
_H = struct.Struct("!H")


def fused_prefix(link: Link) -> str:
    """struct format (after "!") up to the IP header: the ethertype as "H", or "0s" (an
    empty bytes placeholder) when the link has none."""
    if link.etype_at < 0:
        return f"{link.ip_at}x0s"
    return f"{link.etype_at}xH{link.ip_at - link.etype_at - 2}x"


def l3_offset(linktype: int, buf: bytes, off: int, end: int) -> int:
    """Offset of the IP header in the frame buf[off:end], or -1 when it carries no IP."""
    link = LINKS.get(linktype)
    if link is None:
        return -1
    if link.bsd:
        if end - off < 4:
            return -1
        fam = int.from_bytes(buf[off : off + 4], "little")
        if fam > 0xFFFF:
            fam = int.from_bytes(buf[off : off + 4], "big")
        return off + 4 if fam == 2 or fam in BSD_AF_INET6 else -1
    if link.etype_at < 0:
        return off
    if end - off < link.ip_at:
        return -1
    etype = _H.unpack_from(buf, off + link.etype_at)[0]
    p = off + link.ip_at
    while link.vlan and etype in VLAN_TAGS:
        if p + 4 > end:
            return -1
        etype = _H.unpack_from(buf, p + 2)[0]
        p += 4
    return p if etype in _IP_TYPES else -1


_VLAN_TABLE = np.zeros(1 << 16, dtype=bool)
_VLAN_TABLE[list(VLAN_TAGS)] = True
_IP_ETHERTYPE = np.zeros(1 << 16, dtype=bool)
_IP_ETHERTYPE[list(_IP_TYPES)] = True
VLAN_COLUMNS = 2  # VLAN tags the vectorised path reads; more go to the scalar decoder
LINK_BYTES = 24  # bytes of link header `link_offsets` needs: Ethernet + 2 tags (22), SLL2


def u16(h: NDArray[np.uint8], col: int) -> I64:
    return (h[:, col].astype(np.int64) << 8) | h[:, col + 1]


def link_offsets(linktype: int, h: NDArray[np.uint8], flen: I64) -> I64:
    """Per frame, `l3_offset` relative to the frame start: the IP header offset, -1 for
    a frame without IP, -2 for one the scalar decoder must read (more VLAN tags than
    VLAN_COLUMNS). `h` holds each frame's first LINK_BYTES bytes; `flen` the captured
    lengths."""
    n = len(flen)
    link = LINKS.get(linktype)
    if link is None:
        return np.full(n, -2, dtype=np.int64)
    if link.bsd:
        fam = np.ascontiguousarray(h[:, :4]).view("<u4")[:, 0].astype(np.int64)
        big = np.ascontiguousarray(h[:, :4]).view(">u4")[:, 0].astype(np.int64)
        fam = np.where(fam > 0xFFFF, big, fam)
        ok = (flen >= 4) & ((fam == 2) | np.isin(fam, list(BSD_AF_INET6)))
        return np.where(ok, 4, -1)
    if link.etype_at < 0:
        return np.zeros(n, dtype=np.int64)
    etype = u16(h, link.etype_at)
    ok = flen >= link.ip_at
    l3 = np.full(n, link.ip_at, dtype=np.int64)
    slow = None
    tagged = _VLAN_TABLE[etype] if link.vlan else None
    if tagged is not None and tagged.any():
        for k in range(VLAN_COLUMNS):
            at = link.ip_at + 4 * k
            ok &= ~tagged | (flen >= at + 4)
            etype = np.where(tagged, u16(h, at + 2), etype)
            l3[tagged] = at + 4
            tagged &= ok & _VLAN_TABLE[etype]
        slow = tagged
    out = np.where(ok & _IP_ETHERTYPE[etype], l3, -1)
    if slow is not None:
        out[slow] = -2
    return out
