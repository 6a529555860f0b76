"""The capture container: pcap / pcapng records, and what damage in them means.

A format object turns the bytes at a record boundary into the record's size and then
into a frame `(link type, data start, data end, timestamp, wire length)` (None for a
pcapng block that carries no packet). Damage is raised as `Damage` (stop reading, with
the warning) or `Skipped` (a packet skipped, reading goes on); the one reading loop
(`pcap.PcapReader`) does the buffering, the counting and the warnings for both formats.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from testbed._errors import CaptureFormatError

from .decode import Flows
from .linklayer import LINKTYPE_NAMES
from .pcapvec import MAX_BLOCK, MAX_FRAME, OddFrame, PcapBatcher, PcapngBatcher

__all__ = ["OTHER_MAGICS", "PCAPNG_SHB", "PCAP_MAGICS", "Damage", "PcapFormat",
           "PcapngFormat", "Skipped"]

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
OTHER_MAGICS = {
    b"\x34\xcd\xb2\xa1": "a modified (Kuznetzov) pcap, which is not supported",
    b"\xa1\xb2\xcd\x34": "a modified (Kuznetzov) pcap, which is not supported",
    b"\x1f\x8b": "a gzip-compressed file (decompress it first)",
    b"\x28\xb5\x2f\xfd": "a zstd-compressed file (decompress it first)",
    b"PK\x03\x04": "a zip archive",
}

Frame = tuple[int, int, int, float, int]  # link type, data start, data end, ts, wire length
Batch = tuple[int, int, int, int, list[Any]]  # new pos, records, packets, skipped, columns
UnknownLink = Callable[[int, str], CaptureFormatError]


class Damage(Exception):
    """Reading stops here; the message is the warning."""


class Skipped(Exception):
    """This packet is skipped (and counted); the message is the warning."""


class PcapFormat:
    """Classic pcap: a 24-byte file header, then 16-byte record headers."""

    head = 16
    start = 24

    def __init__(self, header: bytes, unknown_link: UnknownLink, link_types: set[int]) -> None:
        order, self.scale = PCAP_MAGICS[header[:4]]
        snaplen, network = struct.unpack_from(order + "II", header, 16)
        self.linktype = network & 0x0FFFFFFF
        if self.linktype not in LINKTYPE_NAMES:
            raise unknown_link(self.linktype, "in the pcap file header")
        link_types.add(self.linktype)
        self.limit = max(MAX_FRAME, min(snaplen, 1 << 24))
        self.rec = struct.Struct(order + "IIII").unpack_from
        self.batcher = PcapBatcher(order, self.scale, self.limit, self.linktype)

    def size(self, buf: bytes, pos: int, at: int, n: int) -> int:
        incl = self.rec(buf, pos)[2]
        if incl > self.limit:
            raise Damage(f"damaged at byte {at}: packet {n + 1} claims {incl} captured "
                         f"bytes (limit {self.limit}); stopped reading")
        return 16 + incl

    def record(self, buf: bytes, pos: int, end: int, at: int, n: int) -> Frame | None:
        sec, frac, _incl, orig = self.rec(buf, pos)
        return self.linktype, pos + 16, end, sec + frac * self.scale, orig

    def partial(self, at: int, n: int, left: int) -> str:
        return f"truncated at byte {at}: packet {n + 1} has a partial record header " \
               f"({left} of 16 bytes)"

    def truncated(self, buf: bytes, pos: int, left: int, at: int, n: int) -> str:
        return f"truncated at byte {at}: packet {n + 1} has {left - 16} of " \
               f"{self.rec(buf, pos)[2]} captured bytes"

    def batch(self, buf: bytes, pos: int, blen: int, decoders: dict[int, Any], flows: Flows,
              odd: list[OddFrame] | None) -> Batch | None:
        return self.batcher.run(buf, pos, blen, decoders[self.linktype], flows, odd)


class PcapngFormat:
    """pcapng: blocks; sections (byte order), interfaces (link type, time resolution and
    offset) and packets (enhanced, simple, obsolete)."""

    head = 12
    start = 0

    def __init__(self, name: str, unknown_link: UnknownLink, link_types: set[int]) -> None:
        self.name = name
        self.unknown_link = unknown_link
        self.link_types = link_types
        self.last_ts = 0.0
        # per interface: (linktype, units per second, offset seconds, snaplen)
        self.ifaces: list[tuple[int, float, float, int]] = []
        self.batcher = PcapngBatcher()
        self._order("<")

    def _order(self, order: str) -> None:
        self.order = order
        self.u32 = struct.Struct(order + "I").unpack_from
        self.u32x2 = struct.Struct(order + "II").unpack_from
        self.epb = struct.Struct(order + "IIIII").unpack_from
        self.u16 = struct.Struct(order + "H").unpack_from

    def size(self, buf: bytes, pos: int, at: int, n: int) -> int:
        btype, tlen = self.u32x2(buf, pos)
        if btype == 0x0A0D0D0A:  # section header (palindromic: any byte order)
            bom = buf[pos + 8 : pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                self._order("<")
            elif bom == b"\x1a\x2b\x3c\x4d":
                self._order(">")
            elif at == 0:
                raise CaptureFormatError(f"{self.name}: pcapng section header with bad "
                                         f"byte-order magic {bom.hex(' ')}")
            else:
                raise Damage(f"damaged at byte {at}: section header with bad byte-order "
                             f"magic after packet {n}; stopped reading")
            btype, tlen = self.u32x2(buf, pos)
            self.ifaces = []
        if tlen < 12 or tlen & 3 or tlen > MAX_BLOCK:
            raise Damage(f"damaged at byte {at}: block of type {btype:#x} after packet {n} "
                         f"claims length {tlen}; stopped reading")
        return int(tlen)

    def record(self, buf: bytes, pos: int, end: int, at: int, n: int) -> Frame | None:
        btype, tlen = self.u32x2(buf, pos)
        if self.u32(buf, end - 4)[0] != tlen:
            raise Damage(f"damaged at byte {at}: block of type {btype:#x} after packet {n} "
                         "has mismatched trailing length; stopped reading")
        ifaces = self.ifaces
        if btype == 6 or btype == 2:  # enhanced / obsolete packet block
            if tlen < 32:
                raise Damage(f"damaged at byte {at}: short packet block")
            iface, hi, lo, cap, orig = self.epb(buf, pos + 8)
            if btype == 2:
                iface = self.u16(buf, pos + 8)[0]
                if iface >= len(ifaces) or pos + 28 + cap > end - 4:
                    raise Skipped(f"damaged at byte {at}: packet {n + 1} skipped")
            elif iface >= len(ifaces):
                raise Skipped(f"damaged at byte {at}: packet {n + 1} names interface {iface}, "
                              "which was not described; packet skipped")
            elif pos + 28 + cap > end - 4:
                raise Skipped(f"damaged at byte {at}: packet {n + 1} claims {cap} captured "
                              f"bytes in a {tlen}-byte block; packet skipped")
            linktype, units, tsoff, _snap = ifaces[iface]
            self.last_ts = ((hi << 32) | lo) / units + tsoff
            return linktype, pos + 28, pos + 28 + cap, self.last_ts, orig
        if btype == 3:  # simple packet block: interface 0, takes the last ts seen
            orig = self.u32(buf, pos + 8)[0]
            if not ifaces:
                raise Skipped(f"damaged at byte {at}: packet {n + 1} before any interface "
                              "description; packet skipped")
            linktype, _units, _tsoff, snap = ifaces[0]
            cap = min(orig, snap) if snap else orig
            return linktype, pos + 12, min(pos + 12 + cap, end - 4), self.last_ts, orig
        if btype == 1:  # interface description block
            if tlen < 20:
                raise Damage(f"damaged at byte {at}: short interface block")
            linktype = self.u16(buf, pos + 8)[0]
            snap = self.u32(buf, pos + 12)[0]
            if linktype not in LINKTYPE_NAMES:
                raise self.unknown_link(
                    linktype, f"on interface {len(ifaces)} (block at byte {at})")
            units, tsoff = _idb_options(buf, pos + 16, end - 4, self.order)
            ifaces.append((linktype, units, tsoff, snap))
            self.link_types.add(linktype)
        return None  # SHB, name resolution, statistics, custom, ...

    def partial(self, at: int, n: int, left: int) -> str:
        return f"truncated at byte {at}: partial block header after packet {n} " \
               f"({left} bytes left)"

    def truncated(self, buf: bytes, pos: int, left: int, at: int, n: int) -> str:
        btype, tlen = self.u32x2(buf, pos)
        return f"truncated at byte {at}: block of type {btype:#x} after packet {n} has " \
               f"{left} of {tlen} bytes"

    def batch(self, buf: bytes, pos: int, blen: int, decoders: dict[int, Any], flows: Flows,
              odd: list[OddFrame] | None) -> Batch | None:
        done = self.batcher.run(buf, pos, blen, self.order, self.ifaces, decoders, flows, odd)
        if done is None:
            return None
        pos, nrec, packets, skipped, columns, self.last_ts = done
        return pos, nrec, packets, skipped, columns


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
