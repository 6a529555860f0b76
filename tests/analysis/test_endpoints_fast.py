"""The vectorised fast path of `extract_endpoints` against the scalar reference path."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from testbed._errors import CaptureFormatError
from testbed.analysis import pcapvec
from testbed.analysis.endpoints import EndpointReport, _extract, extract_endpoints
from testbed.analysis.pcap import Flows, PcapReader

from . import pcapbuild as pb

pytestmark = pytest.mark.usefixtures("native_loops")  # native and Python loops

T0 = 1_700_000_000.0
GUESTS = {
    "10.0.0.2": "regular",
    "10.0.0.3": "tom-zh",
    "10.0.0.4": "tom-zh",
    "fd00::3": "tom-zh",
    "fd00::4": "regular",
    "fd01::9": "other",
}
INFRA = ["10.0.0.1", "fd00::1", "10.0.0.4"]  # a guest that is also infrastructure
ADDRS4 = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "203.0.113.10", "198.51.100.7"]
ADDRS6 = ["fd00::1", "fd00::3", "fd00::4", "fd01::9", "2001:db8::5", "2001:db8::6"]


def _v4_options(src: str, dst: str, body: bytes) -> bytes:
    ip = bytearray(pb.ipv4(src, dst, 6, body))
    ip[0] = 0x46  # IHL 6: 4 bytes of options before the TCP header
    return bytes(ip[:20]) + b"\x01\x01\x01\x00" + bytes(ip[20:])


def random_packets(rng: random.Random, count: int) -> list[bytes]:
    """IP packets of every kind the reader distinguishes."""
    out = []
    for _ in range(count):
        v6 = rng.random() < 0.35
        pool = ADDRS6 if v6 else ADDRS4
        src, dst = rng.choice(pool), rng.choice(pool)
        proto = rng.choice(("tcp", "udp", "icmpv6" if v6 else "icmp"))
        sp, dp = rng.randrange(1, 65536), rng.choice((53, 443, 80))
        kind = rng.random()
        if v6 and kind < 0.15:  # extension headers, fragments
            ext = rng.choice(([(0, bytes(6))], [(60, bytes(14)), (43, bytes(6))], [(44, b"")]))
            out.append(pb.packet(src, dst, proto, sp, dp, b"x", ext=ext))
        elif not v6 and kind < 0.08:  # later fragment: no ports
            out.append(pb.ipv4(src, dst, 17, pb.l4("udp", sp, dp)[1], frag_offset=0x2005))
        elif not v6 and kind < 0.14:  # IP options
            out.append(_v4_options(src, dst, pb.l4("tcp", sp, dp)[1]))
        elif kind < 0.18:  # another protocol (GRE, SCTP)
            num = rng.choice((47, 132))
            out.append((pb.ipv6 if v6 else pb.ipv4)(src, dst, num, struct.pack("!HH", sp, dp)))
        elif kind < 0.22:  # cut by the snap length inside the IP or TCP header
            p = pb.packet(src, dst, "tcp", sp, dp)
            out.append(p[: rng.randrange(0, len(p))])
        else:
            out.append(pb.packet(src, dst, proto, sp, dp, bytes(rng.randrange(0, 30))))
    return out


def wrap(rng: random.Random, link: int, ip: bytes) -> bytes:
    if link == pb.ETH:
        r = rng.random()
        if r < 0.05:
            return pb.arp()
        if r < 0.2:  # 1 to 3 VLAN tags
            tags = tuple(rng.choice((0x8100, 0x88A8)) for _ in range(rng.randrange(1, 4)))
            return pb.ether(ip, tags, 0x0800 if ip and ip[0] >> 4 == 4 else 0x86DD)
        if r < 0.23:
            return pb.ether(ip)[: rng.randrange(0, 18)]  # runt frame
        return pb.ether(ip, ethertype=0x0800 if ip and ip[0] >> 4 == 4 else 0x86DD)
    if link == pb.SLL:
        return pb.sll(ip) if ip else b"\0" * 16
    if link == pb.SLL2:
        return pb.sll2(ip) if ip else b"\0" * 20
    if link == 0:  # BSD loopback, host order of either kind
        fam = 2 if ip and ip[0] >> 4 == 4 else rng.choice((24, 28, 30))
        return struct.pack(rng.choice(("<I", ">I")), fam) + ip
    return ip


def frames(seed: int, link: int, count: int = 400) -> list[pb.Frame]:
    rng = random.Random(seed)
    out = []
    for i, ip in enumerate(random_packets(rng, count)):
        data = wrap(rng, link, ip)
        ts = T0 + i * 0.013 + rng.random() * 0.5  # not monotonic
        out.append(pb.Frame(ts, data, len(data) + rng.randrange(0, 1500)))
    return out


def assert_same(path: Path, guests: dict[str, str] = GUESTS, infra: list[str] = INFRA) -> None:
    want = _extract(path, guests, infra, fast=False)
    got = _extract(path, guests, infra, fast=True)
    assert got == want
    assert got.to_json() == want.to_json()


@pytest.fixture(params=["default", "tiny-batches"])
def batching(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Also run with tiny chunks and batches, so batch and chunk edges fall everywhere."""
    if request.param == "tiny-batches":
        monkeypatch.setattr(pcapvec, "_FAST_CHUNK", 700)
        monkeypatch.setattr(pcapvec, "_BATCH", 16)
    return str(request.param)


@pytest.mark.parametrize("link", [pb.ETH, pb.SLL, pb.SLL2, pb.RAW, pb.RAW4, 12, 0])
@pytest.mark.parametrize("nano,big", [(False, False), (True, True)])
def test_pcap_matches_reference(
    tmp_path: Path, batching: str, link: int, nano: bool, big: bool
) -> None:
    data = pb.pcap_bytes(frames(link, link), link, nano=nano, big_endian=big)
    assert_same(pb.write(tmp_path / "c.pcap", data))


@pytest.mark.parametrize("big", [False, True])
def test_pcapng_mixed_link_types_matches_reference(
    tmp_path: Path, batching: str, big: bool
) -> None:
    links = [pb.ETH, pb.RAW, pb.SLL2, 0, pb.SLL]
    interfaces: list[tuple[int, int | None]] = [(pb.ETH, None), (pb.RAW, 9), (pb.SLL2, 0x94)]
    interfaces += [(0, 3), (pb.SLL, None)]
    rng = random.Random(7)
    packets = []
    for i in range(600):
        iface = rng.randrange(len(links)) if i % 50 > 10 else 0  # runs of one interface
        (fr,) = frames(i, links[iface], 1)
        packets.append((iface, fr))
    simple = frames(99, pb.ETH, 5)
    data = pb.pcapng_bytes(interfaces, packets, big_endian=big, simple=simple)
    assert_same(pb.write(tmp_path / "c.pcapng", data))


def test_pcapng_sections_and_blocks_between_packets(tmp_path: Path, batching: str) -> None:
    one = pb.pcapng_bytes([(pb.ETH, None)], [(0, f) for f in frames(1, pb.ETH, 100)])
    two = pb.pcapng_bytes(
        [(pb.RAW, 9), (pb.ETH, None)],
        [(i % 2, f) for i, f in enumerate(frames(2, pb.RAW, 100))],
        big_endian=True,
        simple=frames(3, pb.RAW, 3),
    )
    assert_same(pb.write(tmp_path / "c.pcapng", one + two + one))


def test_pcapng_skipped_packets_match_reference(tmp_path: Path, batching: str) -> None:
    body = struct.pack("<IIIII", 5, 0, 0, 4, 4) + b"\x45\0\0\0"  # names interface 5
    bad_iface = pb._block("<", 6, body)
    body = struct.pack("<IIIII", 0, 0, 0, 400, 60) + bytes(8)  # claims 400 bytes
    bad_cap = pb._block("<", 6, body)
    head = pb.pcapng_bytes([(pb.ETH, None)], [(0, f) for f in frames(4, pb.ETH, 50)])
    tail = b"".join(pb._block("<", 6, _epb(f)) for f in frames(5, pb.ETH, 50))
    path = pb.write(tmp_path / "c.pcapng", head + bad_iface + tail + bad_cap + tail)
    assert_same(path)
    r = extract_endpoints(path, GUESTS, INFRA)
    assert len(r.stats.warnings) == 2


def _epb(f: pb.Frame) -> bytes:
    t = round(f.ts * 1e6)
    return struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(f.data), f.wire) + f.data


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_truncated_and_damaged_match_reference(tmp_path: Path, fmt: str) -> None:
    fr = frames(11, pb.ETH, 60)
    if fmt == "pcap":
        data = pb.pcap_bytes(fr)
    else:
        data = pb.pcapng_bytes([(pb.ETH, None)], [(0, f) for f in fr])
    path = tmp_path / f"c.{fmt}"
    rng = random.Random(3)
    for cut in [*sorted(rng.sample(range(1, len(data)), 40)), len(data) - 1]:
        path.write_bytes(data[:cut])
        try:
            want = _extract(path, GUESTS, INFRA, fast=False)
        except CaptureFormatError:
            with pytest.raises(CaptureFormatError):
                _extract(path, GUESTS, INFRA, fast=True)
            continue
        assert _extract(path, GUESTS, INFRA, fast=True) == want
    for at in rng.sample(range(24, len(data) - 4), 40):  # random damage
        damaged = bytearray(data)
        damaged[at : at + 4] = rng.randbytes(4)
        path.write_bytes(bytes(damaged))
        assert_same(path)


def test_absurd_record_length_matches_reference(tmp_path: Path, batching: str) -> None:
    data = bytearray(pb.pcap_bytes(frames(12, pb.ETH, 30)))
    rec = 24
    for _ in range(20):
        rec += 16 + struct.unpack_from("<I", data, rec + 8)[0]
    struct.pack_into("<I", data, rec + 8, 1 << 30)
    path = pb.write(tmp_path / "c.pcap", bytes(data))
    assert_same(path)
    r = extract_endpoints(path, GUESTS, INFRA)
    assert r.stats.frames_read == 20 and "damaged" in r.stats.warnings[0]


def test_many_variants_and_guest_pairs(tmp_path: Path, batching: str) -> None:
    guests = {f"10.0.{i // 250}.{i % 250 + 1}": f"v{i}" for i in range(300)}
    guests.update({f"fd00::{i:x}": f"v{i}" for i in range(300)})
    rng = random.Random(5)
    fr = []
    addrs = [*guests, "203.0.113.10", "2001:db8::5"]
    for i in range(500):
        a, b = rng.choice(addrs), rng.choice(addrs)
        if (":" in a) != (":" in b):
            b = a
        data = pb.ether(pb.packet(a, b, rng.choice(("tcp", "udp")), 1000 + i % 7, 443))
        fr.append(pb.Frame(T0 + i, data))
    path = pb.write(tmp_path / "c.pcap", pb.pcap_bytes(fr))
    assert_same(path, guests, ["203.0.113.10"])


def test_no_guests_and_empty_capture(tmp_path: Path) -> None:
    path = pb.write(tmp_path / "c.pcap", pb.pcap_bytes(frames(13, pb.ETH, 100)))
    assert_same(path, {}, [])
    empty = pb.write(tmp_path / "e.pcap", pb.pcap_bytes([]))
    assert_same(empty)
    r: EndpointReport = extract_endpoints(empty, GUESTS)
    assert r.endpoints == [] and r.stats.frames_read == 0


def test_common_frames_take_the_columns(tmp_path: Path) -> None:
    """Plain IPv4/IPv6 TCP/UDP/ICMP frames never reach the scalar per-flow dict."""
    fr = [
        pb.Frame(T0 + i, pb.ether(pb.packet(s, d, p, 1, 2)))
        for i, (s, d, p) in enumerate(
            [("10.0.0.2", "192.0.2.1", "tcp"), ("fd00::3", "2001:db8::1", "udp")] * 50
            + [("10.0.0.2", "192.0.2.1", "icmp")]
        )
    ]
    path = pb.write(tmp_path / "c.pcap", pb.pcap_bytes(fr))
    flows: Flows = {}
    reader = PcapReader(path)
    batches = list(reader.flow_batches(flows))
    assert flows == {}
    assert sum(len(b.ts) for b in batches) == reader.packets == 101
    assert {b.version for b in batches} == {4, 6}
