"""Build small pcap/pcapng files byte by byte (independent of the reader under test)."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ETH = 1
RAW = 101
RAW4 = 228
RAW6 = 229
SLL = 113
SLL2 = 276


@dataclass
class Frame:
    ts: float
    data: bytes  # link-layer frame
    orig_len: int | None = None  # wire length (default len(data))

    @property
    def wire(self) -> int:
        return self.orig_len if self.orig_len is not None else len(self.data)


def _ip(a: str) -> bytes:
    return ipaddress.ip_address(a).packed


def l4(proto: str, sport: int = 0, dport: int = 0, payload: bytes = b"") -> tuple[int, bytes]:
    if proto == "tcp":
        return 6, struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x18, 8192, 0, 0) + payload
    if proto == "udp":
        return 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if proto == "icmp":
        return 1, struct.pack("!BBHHH", 8, 0, 0, 1, 1) + payload
    if proto == "icmpv6":
        return 58, struct.pack("!BBHHH", 128, 0, 0, 1, 1) + payload
    raise ValueError(proto)


def ipv4(src: str, dst: str, proto: int, body: bytes, frag_offset: int = 0) -> bytes:
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(body),
            1,
            frag_offset,
            64,
            proto,
            0,
            _ip(src),
            _ip(dst),
        )
        + body
    )


def ipv6(
    src: str, dst: str, proto: int, body: bytes, ext: Sequence[tuple[int, bytes]] = ()
) -> bytes:
    """`ext`: extension headers as (header type, 6+8n bytes of content), in order."""
    chain = b""
    types = [t for t, _ in ext] + [proto]
    for i, (_, content) in enumerate(ext):
        nxt = types[i + 1]
        if types[i] == 44:
            chain += struct.pack("!BBHI", nxt, 0, 0, 7)
        else:
            assert (len(content) + 2) % 8 == 0
            chain += bytes([nxt, (len(content) + 2) // 8 - 1]) + content
    first = types[0]
    payload = chain + body
    return (
        struct.pack("!IHBB16s16s", 6 << 28, len(payload), first, 64, _ip(src), _ip(dst)) + payload
    )


def packet(
    src: str,
    dst: str,
    proto: str,
    sport: int = 0,
    dport: int = 0,
    payload: bytes = b"",
    ext: list[tuple[int, bytes]] | None = None,
) -> bytes:
    num, body = l4(proto, sport, dport, payload)
    if ":" in src:
        return ipv6(src, dst, num, body, ext or [])
    return ipv4(src, dst, num, body)


def ether(ip_packet: bytes, tags: tuple[int, ...] = (), ethertype: int | None = None) -> bytes:
    """Ethernet II frame; `tags` are VLAN TPIDs (0x8100, 0x88A8) outermost first."""
    if ethertype is None:
        ethertype = 0x86DD if ip_packet[0] >> 4 == 6 else 0x0800
    hdr = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02"
    for i, tpid in enumerate(tags):
        hdr += struct.pack("!HH", tpid, 100 + i)
    return hdr + struct.pack("!H", ethertype) + ip_packet


def arp() -> bytes:
    return b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x06" + bytes(28)


def sll(ip_packet: bytes) -> bytes:
    etype = 0x86DD if ip_packet[0] >> 4 == 6 else 0x0800
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6 + b"\0\0", etype) + ip_packet


def sll2(ip_packet: bytes) -> bytes:
    etype = 0x86DD if ip_packet[0] >> 4 == 6 else 0x0800
    return struct.pack("!HHIHBB8s", etype, 0, 2, 1, 0, 6, b"\x02" * 6 + b"\0\0") + ip_packet


def pcap_bytes(
    frames: list[Frame],
    linktype: int = ETH,
    *,
    nano: bool = False,
    big_endian: bool = False,
    snaplen: int = 262144,
) -> bytes:
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for fr in frames:
        sec = int(fr.ts)
        frac = round((fr.ts - sec) * (1e9 if nano else 1e6))
        out.append(struct.pack(e + "IIII", sec, frac, len(fr.data), fr.wire) + fr.data)
    return b"".join(out)


def _block(e: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack(e + "II", btype, total) + body + struct.pack(e + "I", total)


def pcapng_bytes(
    interfaces: list[tuple[int, int | None]],
    packets: list[tuple[int, Frame]],
    *,
    big_endian: bool = False,
    simple: Sequence[Frame] = (),
) -> bytes:
    """`interfaces`: (linktype, if_tsresol byte or None); `packets`: (iface, frame) as
    EPBs; `simple`: frames written as SPBs after them (interface 0)."""
    e = ">" if big_endian else "<"
    out = [_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))]
    out.append(_block(e, 4, struct.pack(e + "HH", 2, 4) + b"host" + struct.pack(e + "HH", 0, 0)))
    for linktype, tsresol in interfaces:
        opts = b""
        if tsresol is not None:
            opts = struct.pack(e + "HHB3x", 9, 1, tsresol) + struct.pack(e + "HH", 0, 0)
        out.append(_block(e, 1, struct.pack(e + "HHI", linktype, 0, 0) + opts))
    for iface, fr in packets:
        resol = interfaces[iface][1]
        if resol is None:
            units = 10**6
        elif resol & 0x80:
            units = 2 ** (resol & 0x7F)
        else:
            units = 10**resol
        t = round(fr.ts * units)
        body = struct.pack(e + "IIIII", iface, t >> 32, t & 0xFFFFFFFF, len(fr.data), fr.wire)
        out.append(_block(e, 6, body + fr.data))
    for fr in simple:
        out.append(_block(e, 3, struct.pack(e + "I", fr.wire) + fr.data))
    return b"".join(out)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- payload-level helpers (names, evidence) ------------------------------------------------
TCP_SYN = 0x02
TCP_ACK = 0x10
TCP_PSH_ACK = 0x18


def tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    payload: bytes = b"",
    flags: int = TCP_PSH_ACK,
    seq: int = 1,
    options: bytes = b"",
) -> bytes:
    """An IPv4/IPv6 TCP packet with chosen flags, sequence number and (padded) options."""
    options += b"\x01" * (-len(options) % 4)  # NOP padding
    doff = (20 + len(options)) // 4
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, doff << 4, flags, 8192, 0, 0)
    body = seg + options + payload
    if ":" in src:
        return ipv6(src, dst, 6, body)
    return ipv4(src, dst, 6, body)


def dns_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def dns_response(
    qname: str, answers: Sequence[tuple[str, str, str]], qtype: int = 1, txid: int = 0x1234
) -> bytes:
    """A DNS response; `answers`: (owner, "A" | "AAAA" | "CNAME", value), uncompressed."""
    types = {"A": 1, "AAAA": 28, "CNAME": 5}
    msg = struct.pack("!HHHHHH", txid, 0x8180, 1, len(answers), 0, 0)
    msg += dns_name(qname) + struct.pack("!HH", qtype, 1)
    for owner, rtype, value in answers:
        rdata = dns_name(value) if rtype == "CNAME" else _ip(value)
        msg += dns_name(owner) + struct.pack("!HHIH", types[rtype], 1, 300, len(rdata)) + rdata
    return msg
