from __future__ import annotations

import struct
from pathlib import Path

import pytest

from testbed._errors import AnalysisError, CaptureFormatError
from testbed.analysis.pcap import MAX_BLOCK, Packet, PcapReader, read_packets

from . import pcapbuild as pb

pytestmark = pytest.mark.usefixtures("native_loops")  # native and Python loops

T0 = 1_700_000_000.0


def sample_frames(link=pb.ETH) -> tuple[list[pb.Frame], list[Packet]]:
    """A few frames of every kind plus the packets the reader must return."""
    wrap = {
        pb.ETH: pb.ether,
        pb.SLL: pb.sll,
        pb.SLL2: pb.sll2,
        pb.RAW: lambda p: p,
    }[link]
    specs = [
        ("10.0.0.2", "203.0.113.10", "tcp", 50000, 443, b"hello"),
        ("203.0.113.10", "10.0.0.2", "tcp", 443, 50000, b"world!"),
        ("10.0.0.2", "239.255.255.250", "udp", 50001, 1900, b"M-SEARCH"),
        ("10.0.0.2", "198.51.100.7", "icmp", 0, 0, b""),
        ("fd00::2", "2001:db8::5", "udp", 40000, 53, b"q"),
        ("2001:db8::5", "fd00::2", "icmpv6", 0, 0, b""),
    ]
    frames, want = [], []
    for i, (s, d, proto, sp, dp, payload) in enumerate(specs):
        ts = T0 + i * 0.25 + 0.000123
        data = wrap(pb.packet(s, d, proto, sp, dp, payload))
        frames.append(pb.Frame(ts, data, len(data) + 100))
        approx_ts: float = pytest.approx(ts, abs=1e-6)  # type: ignore[assignment]
        want.append(Packet(approx_ts, s, d, proto, sp, dp, len(data) + 100))
    if link == pb.ETH:
        frames.insert(2, pb.Frame(T0 + 0.3, pb.arp()))
    return frames, want


@pytest.mark.parametrize("link", [pb.ETH, pb.SLL, pb.SLL2, pb.RAW])
@pytest.mark.parametrize("nano", [False, True])
@pytest.mark.parametrize("big", [False, True])
def test_pcap_link_types(tmp_path: Path, link: int, nano: bool, big: bool) -> None:
    frames, want = sample_frames(link)
    path = pb.write(tmp_path / "c.pcap", pb.pcap_bytes(frames, link, nano=nano, big_endian=big))
    reader = PcapReader(path)
    assert list(reader) == want
    assert reader.warnings == []
    assert reader.frames == len(frames)
    assert reader.skipped == (1 if link == pb.ETH else 0)
    assert reader.format == "pcap"


def test_raw_ipv4_and_ipv6_link_types(tmp_path: Path) -> None:
    p4 = pb.packet("10.0.0.2", "192.0.2.1", "tcp", 1, 2)
    p6 = pb.packet("fd00::2", "2001:db8::1", "tcp", 3, 4)
    a = pb.write(tmp_path / "a.pcap", pb.pcap_bytes([pb.Frame(T0, p4)], pb.RAW4))
    b = pb.write(tmp_path / "b.pcap", pb.pcap_bytes([pb.Frame(T0, p6)], pb.RAW6))
    assert [(p.src, p.sport) for p in read_packets(a)] == [("10.0.0.2", 1)]
    assert [(p.dst, p.dport) for p in read_packets(b)] == [("2001:db8::1", 4)]


def test_nanosecond_precision(tmp_path: Path) -> None:
    data = pb.ether(pb.packet("10.0.0.2", "192.0.2.1", "udp", 1, 2))
    raw = pb.pcap_bytes([pb.Frame(0, data)], nano=True)
    raw = raw[:28] + struct.pack("<I", 123_456_789) + raw[32:]
    (pkt,) = read_packets(pb.write(tmp_path / "n.pcap", raw))
    assert pkt.ts == pytest.approx(0.123456789, abs=1e-12)


def test_vlan_tags(tmp_path: Path) -> None:
    ip = pb.packet("10.0.0.2", "192.0.2.1", "tcp", 1234, 80)
    frames = [
        pb.Frame(T0, pb.ether(ip, tags=(0x8100,))),
        pb.Frame(T0 + 1, pb.ether(ip, tags=(0x88A8, 0x8100))),
    ]
    pkts = list(read_packets(pb.write(tmp_path / "v.pcap", pb.pcap_bytes(frames))))
    assert [(p.src, p.dst, p.sport, p.dport) for p in pkts] == [
        ("10.0.0.2", "192.0.2.1", 1234, 80)
    ] * 2


def test_ipv6_extension_headers_and_fragments(tmp_path: Path) -> None:
    ext = [(0, bytes(6)), (60, bytes(14)), (44, b"")]
    first = pb.packet("fd00::2", "2001:db8::1", "udp", 5353, 53, ext=ext)
    # Non-first fragment: set the fragment offset; ports must not be read.
    later = bytearray(first)
    frag_at = 40 + 8 + 16
    later[frag_at + 2 : frag_at + 4] = struct.pack("!H", 8 << 3)
    v4_later = pb.ipv4("10.0.0.2", "192.0.2.1", 17, b"\x12\x34\x00\x35" + bytes(8), 100)
    frames = [
        pb.Frame(T0, pb.ether(first)),
        pb.Frame(T0, pb.ether(bytes(later))),
        pb.Frame(T0, pb.ether(v4_later)),
    ]
    pkts = list(read_packets(pb.write(tmp_path / "x.pcap", pb.pcap_bytes(frames))))
    assert [(p.proto, p.sport, p.dport) for p in pkts] == [
        ("udp", 5353, 53),
        ("udp", 0, 0),
        ("udp", 0, 0),
    ]


def test_other_protocol_number(tmp_path: Path) -> None:
    gre = pb.ipv4("10.0.0.2", "192.0.2.1", 47, bytes(8))
    (pkt,) = read_packets(pb.write(tmp_path / "g.pcap", pb.pcap_bytes([pb.Frame(T0, gre)], pb.RAW)))
    assert (pkt.proto, pkt.sport, pkt.dport) == ("47", 0, 0)


@pytest.mark.parametrize("big", [False, True])
def test_pcapng_interfaces_resolutions_and_simple_blocks(tmp_path: Path, big: bool) -> None:
    eth = pb.ether(pb.packet("10.0.0.2", "192.0.2.1", "tcp", 1000, 443, b"a"))
    sll = pb.sll(pb.packet("10.0.0.3", "192.0.2.2", "udp", 2000, 53, b"b"))
    raw6 = pb.packet("fd00::3", "2001:db8::9", "tcp", 3000, 80)
    ifaces = [(pb.ETH, None), (pb.SLL, 9), (pb.RAW, 0x80 | 20)]
    pkts = [
        (0, pb.Frame(T0 + 0.5, eth, 1514)),
        (1, pb.Frame(T0 + 0.123456789, sll)),
        (2, pb.Frame(T0 + 2, raw6)),
        (0, pb.Frame(T0 + 3, pb.arp())),
    ]
    simple = [pb.Frame(0, eth, len(eth))]
    path = pb.write(
        tmp_path / "c.pcapng", pb.pcapng_bytes(ifaces, pkts, big_endian=big, simple=simple)
    )
    reader = PcapReader(path)
    got = list(reader)
    assert reader.format == "pcapng"
    assert reader.warnings == []
    assert reader.link_types == {pb.ETH, pb.SLL, pb.RAW}
    assert reader.skipped == 1
    assert [(p.src, p.dst, p.proto, p.sport, p.dport, p.length) for p in got] == [
        ("10.0.0.2", "192.0.2.1", "tcp", 1000, 443, 1514),
        ("10.0.0.3", "192.0.2.2", "udp", 2000, 53, len(sll)),
        ("fd00::3", "2001:db8::9", "tcp", 3000, 80, len(raw6)),
        ("10.0.0.2", "192.0.2.1", "tcp", 1000, 443, len(eth)),
    ]
    assert got[0].ts == pytest.approx(T0 + 0.5, abs=1e-6)
    assert got[1].ts == pytest.approx(T0 + 0.123456789, abs=1e-6)
    assert got[2].ts == pytest.approx(T0 + 2, abs=1e-5)
    assert got[3].ts == pytest.approx(T0 + 3, abs=1e-6)  # SPB: last timestamp seen (ARP)


def _boundaries(data: bytes, first: int, rec_len) -> set[int]:
    out, pos = {first}, first
    while pos < len(data):
        pos += rec_len(data, pos)
        out.add(pos)
    return out


def test_truncated_pcap_at_every_offset(tmp_path: Path) -> None:
    frames, want = sample_frames()
    data = pb.pcap_bytes(frames)
    clean = _boundaries(data, 24, lambda d, p: 16 + struct.unpack_from("<I", d, p + 8)[0])
    for cut in range(1, len(data)):
        path = pb.write(tmp_path / "t.pcap", data[:cut])
        seen: list[str] = []
        got = list(read_packets(path, on_warning=seen.append))
        assert got == want[: len(got)], cut
        if cut in clean:
            assert seen == [], cut
        else:
            assert len(seen) == 1 and "t.pcap" in seen[0], cut
            assert "byte" in seen[0] and "truncated" in seen[0]


def test_truncated_pcapng_at_every_offset(tmp_path: Path) -> None:
    eth = pb.ether(pb.packet("10.0.0.2", "192.0.2.1", "tcp", 1000, 443, b"abc"))
    pkts = [(0, pb.Frame(T0 + i, eth)) for i in range(4)]
    data = pb.pcapng_bytes([(pb.ETH, None)], pkts)
    clean = _boundaries(data, 0, lambda d, p: struct.unpack_from("<I", d, p + 4)[0])
    for cut in range(1, len(data)):
        path = pb.write(tmp_path / "t.pcapng", data[:cut])
        reader = PcapReader(path)
        got = list(reader)
        assert len(got) <= 4
        assert all(p.dport == 443 for p in got)
        assert (reader.warnings == []) == (cut in clean), cut


def test_truncation_message_names_offset_and_packet(tmp_path: Path) -> None:
    frames, _ = sample_frames()
    data = pb.pcap_bytes(frames)
    first_len = 16 + len(frames[0].data)
    cut = 24 + first_len + 20  # inside the second packet's data
    reader = PcapReader(pb.write(tmp_path / "t.pcap", data[:cut]))
    assert len(list(reader)) == 1
    (msg,) = reader.warnings
    assert f"byte {24 + first_len}" in msg and "packet 2" in msg


def test_absurd_record_length_is_damage(tmp_path: Path) -> None:
    frames, want = sample_frames()
    data = bytearray(pb.pcap_bytes(frames))
    second = 24 + 16 + len(frames[0].data)
    struct.pack_into("<I", data, second + 8, 0xFFFFFFF0)
    reader = PcapReader(pb.write(tmp_path / "a.pcap", bytes(data)))
    assert list(reader) == want[:1]
    assert "packet 2" in reader.warnings[0] and "claims" in reader.warnings[0]


def test_absurd_pcapng_block_length_is_damage(tmp_path: Path) -> None:
    eth = pb.ether(pb.packet("10.0.0.2", "192.0.2.1", "tcp", 1000, 443))
    data = bytearray(pb.pcapng_bytes([(pb.ETH, None)], [(0, pb.Frame(T0, eth))] * 2))
    last = len(data) - (32 + len(eth) + (-len(eth) % 4))
    struct.pack_into("<I", data, last + 4, MAX_BLOCK + 4)
    reader = PcapReader(pb.write(tmp_path / "a.pcapng", bytes(data)))
    assert len(list(reader)) == 1
    assert "claims length" in reader.warnings[0]


@pytest.mark.parametrize(
    "content, found",
    [
        (b"hello world, this is text", "magic bytes"),
        (b"\x1f\x8b\x08\x00" + bytes(40), "gzip"),
        (b"", "empty"),
        (b"\x00", "magic bytes"),
    ],
)
def test_not_a_capture(tmp_path: Path, content: bytes, found: str) -> None:
    path = pb.write(tmp_path / "junk.bin", content)
    with pytest.raises(CaptureFormatError, match=found) as info:
        read_packets(path)
    assert "junk.bin" in str(info.value)


def test_unknown_link_type(tmp_path: Path) -> None:
    path = pb.write(tmp_path / "u.pcap", pb.pcap_bytes([], linktype=147))
    with pytest.raises(CaptureFormatError, match="link type 147"):
        list(read_packets(path))
    ng = pb.write(tmp_path / "u.pcapng", pb.pcapng_bytes([(147, None)], []))
    with pytest.raises(CaptureFormatError, match=r"link type 147.*interface 0"):
        list(read_packets(ng))


def test_missing_file_is_analysis_error(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="cannot read"):
        read_packets(tmp_path / "nope.pcap")


def test_header_only_and_partial_magic(tmp_path: Path) -> None:
    assert list(read_packets(pb.write(tmp_path / "h.pcap", pb.pcap_bytes([])))) == []
    reader = PcapReader(pb.write(tmp_path / "p.pcap", b"\xd4\xc3"))
    assert list(reader) == [] and "truncated" in reader.warnings[0]


def test_many_packets_across_chunks(tmp_path: Path) -> None:
    big = pb.ether(pb.packet("10.0.0.2", "192.0.2.1", "tcp", 1, 2, bytes(1400)))
    frames = [pb.Frame(T0 + i, big) for i in range(2000)]  # ~2.9 MB: spans several chunks
    reader = PcapReader(pb.write(tmp_path / "m.pcap", pb.pcap_bytes(frames)))
    assert sum(1 for _ in reader.iter_raw()) == 2000
    assert reader.warnings == []


def _flows_from_raw(reader: PcapReader) -> dict:
    out: dict = {}
    for ts, src, dst, proto, sport, dport, length in reader.iter_raw():
        st = out.setdefault((src, dst, proto, sport, dport), [0, 0, ts, ts])
        st[0] += 1
        st[1] += length
        st[2] = min(st[2], ts)
        st[3] = max(st[3], ts)
    return out


@pytest.mark.parametrize("link", [pb.ETH, pb.SLL, pb.SLL2, pb.RAW])
def test_flows_fast_path_matches_iteration(tmp_path: Path, link: int) -> None:
    frames, _ = sample_frames(link)
    # Repeat with shuffled times so first/last are not simply file order.
    more = [pb.Frame(T0 - 5 + (i * 7 % 5), f.data, f.wire) for i, f in enumerate(frames * 3)]
    opts = pb.ipv4("10.0.0.2", "192.0.2.1", 6, b"")  # IPv4 with options: generic path
    opts = bytes([0x46]) + opts[1:20] + b"\x01\x01\x01\x01" + pb.l4("tcp", 7, 8)[1]
    if link == pb.ETH:
        more.append(pb.Frame(T0, pb.ether(opts)))
    data = pb.pcap_bytes(frames + more, link)
    for cut in (len(data), len(data) - 3):
        reader = PcapReader(pb.write(tmp_path / "f.pcap", data[:cut]))
        want = _flows_from_raw(reader)
        counts = (reader.frames, reader.packets, reader.skipped, reader.warnings)
        assert reader.flows() == want
        assert (reader.frames, reader.packets, reader.skipped, reader.warnings) == counts
        if link == pb.ETH and cut == len(data):
            assert (b"\x0a\x00\x00\x02", b"\xc0\x00\x02\x01", 6, 7, 8) in want


def test_flows_fast_path_pcapng(tmp_path: Path) -> None:
    frames, _ = sample_frames(pb.ETH)
    data = pb.pcapng_bytes([(pb.ETH, 9)], [(0, f) for f in frames * 2])
    reader = PcapReader(pb.write(tmp_path / "f.pcapng", data))
    assert reader.flows() == _flows_from_raw(reader)
