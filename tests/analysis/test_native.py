"""The native loops give exactly what their Python references give: the record walk's
offsets on whole, truncated, damaged and random buffers, from every start position, both
byte orders; the payload gather's bytes for any ranges; the SNI walk's names on real,
cut, flipped and random ClientHellos; the first-seen filter's rows on repetitive buffers."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from testbed.analysis import native

from .pcapbuild import Frame, ether, packet, pcap_bytes, pcapng_bytes

NATIVE = native.native_walk
PYTHON = native.python_walk


def _frames(n: int) -> list[Frame]:
    return [Frame(1.0 + i, ether(packet("10.0.0.2", "1.1.1.1", "udp", 5000 + i, 53,
                                        b"x" * (i % 7))))
            for i in range(n)]


def _cases() -> list[tuple[str, bytes, int, bool]]:
    """(name, buffer, first record offset, big endian)."""
    rng = random.Random(10)
    out = []
    for big in (False, True):
        e = ">" if big else "<"
        whole = pcap_bytes(_frames(40), big_endian=big)
        ng = pcapng_bytes([(1, None)], [(0, f) for f in _frames(40)], big_endian=big)
        out += [(f"pcap whole {e}", whole, 24, big), (f"pcapng whole {e}", ng, 0, big)]
        for cut in (25, 30, 36, 39, 40, 100, len(whole) - 1, len(whole) - 13):
            out.append((f"pcap cut at {cut} {e}", whole[:cut], 24, big))
            out.append((f"pcapng cut at {cut} {e}", ng[:cut], 0, big))
        huge = bytearray(whole)
        struct.pack_into(e + "I", huge, 24 + 8, 0xFFFFFFFF)  # absurd captured length
        out.append((f"pcap absurd length {e}", bytes(huge), 24, big))
        zero = bytearray(ng)
        at = ng.find(struct.pack(e + "I", 6))  # first EPB: total length 0 (no progress)
        struct.pack_into(e + "I", zero, at + 4, 0)
        out.append((f"pcapng zero-length block {e}", bytes(zero), at, big))
        for i in range(10):
            junk = rng.randbytes(rng.randrange(0, 400))
            out.append((f"random {i} {e}", junk, 0, big))
            out.append((f"pcap then random {i} {e}", whole[:300] + junk, 24, big))
    return out


CASES = _cases()


@pytest.mark.parametrize(("name", "buf", "start", "big"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("kind", [0, 1], ids=["pcap", "pcapng"])
def test_native_walk_matches_reference(name: str, buf: bytes, start: int, big: bool,
                                       kind: int) -> None:
    assert NATIVE is not None, "the native record walk was not built: run `make setup`"
    for pos in sorted({start, 0, 1, len(buf) // 2, len(buf), len(buf) + 5}):
        for count in (0, 1, 3, 1 << 16):
            want = PYTHON[kind](buf, pos, count, big).tolist()
            got = NATIVE[kind](buf, pos, count, big).tolist()
            assert got == want, (f"{name}: the native walk from byte {pos} (at most {count}) "
                                 f"gave offsets {got[:8]}..., the reference {want[:8]}...")


def test_whole_capture_walk_finds_every_record() -> None:
    buf = pcap_bytes(_frames(40))
    walk = native.walks()[0]
    offsets = walk(buf, 24, 1 << 16, False).tolist()
    assert len(offsets) == 41 and offsets[-1] == len(buf), \
        "the walk should give one offset per record, then the end of the data"


@pytest.mark.parametrize("seed", range(12))
def test_native_gather_matches_reference(seed: int) -> None:
    assert native.native_gather is not None, "the native gather was not built: run `make setup`"
    rng = random.Random(seed)
    buf = rng.randbytes(rng.randrange(0, 300))
    n = rng.randrange(0, 50)
    starts = np.array([rng.randrange(0, len(buf) + 20) for _ in range(n)], dtype=np.int64)
    ends = starts + np.array([rng.randrange(-5, 40) for _ in range(n)], dtype=np.int64)
    ends = np.maximum(ends, 0)
    got = native.native_gather(buf, starts, ends)
    want = native.python_gather(buf, starts, ends)
    assert got == want, f"the native gather gave {got!r}, the reference {want!r}"


def test_native_gather_refuses_columns_of_two_lengths() -> None:
    assert native.native_gather is not None, "the native gather was not built: run `make setup`"
    with pytest.raises(ValueError, match="one length"):
        native.native_gather(b"abc", np.zeros(2, np.int64), np.zeros(3, np.int64))


def test_missing_extension_falls_back_with_one_notice(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(native, "native_walk", None)
    monkeypatch.setattr(native, "native_gather", None)
    monkeypatch.setattr(native, "native_snis", None)
    monkeypatch.setattr(native, "native_first_seen", None)
    monkeypatch.setattr(native, "_noticed", False)
    assert native.walks() is native.python_walk
    assert native.gather() is native.python_gather
    assert native.snis() is native.python_snis
    assert native.first_seen() is native.python_first_seen
    assert native.walks() is native.python_walk
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "native capture helpers not built" in err, \
        f"a missing extension should be said once, in one line; stderr was {err!r}"


def _hellos() -> list[tuple[str, bytes]]:
    """(name, ClientHello handshake message): real ones from Python's ssl module (with and
    without SNI, grown past one segment), every cut of one, byte flips, random bytes."""
    from .test_names import client_hello, padded_hello

    rng = random.Random(11)
    names = ("a.example.test", "x" * 60 + ".long.example.test", None)
    real = [(f"real {n}", client_hello(n)[5:]) for n in names]
    real.append(("padded", padded_hello(client_hello("pq.example.test"), 1400)[5:]))
    out = list(real)
    msg = real[0][1]
    out += [(f"cut at {i}", msg[:i]) for i in range(0, len(msg) + 1, 7)]
    for i in range(60):
        flipped = bytearray(msg)
        for _ in range(rng.randrange(1, 4)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        out.append((f"flipped {i}", bytes(flipped)))
    out += [(f"random {i}", b"\x01" + rng.randbytes(rng.randrange(0, 120))) for i in range(20)]
    out.append(("non-ascii name", client_hello("a.example.test")[5:].replace(b"a.ex", b"\xe4.ex")))
    return out


HELLOS = _hellos()


@pytest.mark.parametrize(("name", "msg"), HELLOS, ids=[h[0] for h in HELLOS])
def test_native_sni_walk_matches_reference(name: str, msg: bytes) -> None:
    assert native.native_snis is not None, "the native SNI walk was not built: run `make setup`"
    buf = b"junk" + msg + b"tail"
    starts = np.array([4, 4, 0, len(buf) - 2, 4], dtype=np.int64)
    ends = np.array([4 + len(msg), len(buf) + 9, 4 + len(msg), len(buf), 2], dtype=np.int64)
    got = native.native_snis(buf, starts, ends)
    want = native.python_snis(buf, starts, ends)
    assert got == want, f"{name}: the native SNI walk gave {got!r}, the reference {want!r}"


def test_sni_walk_finds_the_name() -> None:
    from .test_names import client_hello

    msg = client_hello("chat.example.test")[5:]
    got = native.snis()(msg, np.array([0]), np.array([len(msg)]))
    assert got == ["chat.example.test"], f"the SNI walk should find the name, gave {got!r}"


@pytest.mark.parametrize("seed", range(16))
def test_native_first_seen_matches_reference(seed: int) -> None:
    assert native.native_first_seen is not None, \
        "the native first-seen filter was not built: run `make setup`"
    rng = random.Random(seed)
    pieces = [rng.randbytes(rng.randrange(0, 6)) for _ in range(rng.randrange(1, 8))]
    buf = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 200)))
    n = rng.randrange(0, 300)
    starts = np.array([rng.randrange(-2, len(buf) + 5) for _ in range(n)], dtype=np.int64)
    ends = starts + np.array([rng.randrange(-3, 7) for _ in range(n)], dtype=np.int64)
    tags = np.array([rng.randrange(-1, 3) for _ in range(n)], dtype=np.int64)
    got = native.native_first_seen(buf, starts, ends, tags).tolist()
    want = native.python_first_seen(buf, starts, ends, tags).tolist()
    assert got == want, f"the native first-seen filter kept rows {got}, the reference {want}"


def _link_frames(linktype: int, rng: random.Random) -> list[bytes]:
    """Frames of one link type: IPv4/IPv6 TCP, UDP, ICMP, fragments, extension headers,
    IP options, VLAN tags (Ethernet), non-IP, cut at every length and randomly flipped."""
    from .pcapbuild import arp, ipv4, sll, sll2

    ips = [packet("10.0.0.2", "1.1.1.1", "tcp", 5000, 443, b"\x16\x03\x01" + b"h" * 40),
           packet("10.0.0.2", "1.1.1.1", "udp", 5353, 53, b"q" * 30),
           packet("10.0.0.2", "1.1.1.1", "icmp"),
           packet("2001:db8::2", "2001:db8::9", "tcp", 6000, 80, b"GET / HTTP/1.1\r\n"),
           packet("2001:db8::2", "2001:db8::9", "udp", 6001, 53, b"r" * 12),
           packet("2001:db8::2", "2001:db8::9", "udp", 1, 2, b"x", ext=[(0, bytes(6))]),
           ipv4("10.0.0.2", "1.1.1.1", 17, b"frag" * 4, frag_offset=3),
           b"\x46" + packet("10.0.0.2", "1.1.1.1", "tcp", 1, 2, b"opt")[1:]]
    wrap = {1: lambda p: ether(p), 113: sll, 276: sll2, 101: lambda p: p, 12: lambda p: p,
            228: lambda p: p, 229: lambda p: p,
            0: lambda p: struct.pack("<I", 2 if p[0] >> 4 == 4 else 30) + p}[linktype]
    frames = [wrap(p) for p in ips]
    if linktype == 1:
        frames += [ether(ips[0], tags=t) for t in ((0x8100,), (0x88A8, 0x8100),
                                                   (0x8100, 0x8100, 0x8100))]
        frames += [arp(), ether(ips[1], ethertype=0x1234)]
    if linktype == 0:
        frames.append(struct.pack(">I", 24) + ips[3])
    out = []
    for f in frames:
        out.append(f)
        out += [f[:cut] for cut in range(0, len(f), 3)]
        for _ in range(6):
            g = bytearray(f)
            for _ in range(rng.randrange(1, 4)):
                g[rng.randrange(len(g))] = rng.randrange(256)
            out.append(bytes(g))
    return out


@pytest.mark.parametrize("linktype", [0, 1, 12, 101, 113, 228, 229, 276])
def test_native_frame_columns_match_numpy(linktype: int) -> None:
    from testbed.analysis import pcapvec

    if native.native_frame_columns is None:
        pytest.skip("the native loops were not built")
    rng = random.Random(linktype)
    frames = _link_frames(linktype, rng)
    buf = b"".join(frames)
    ends = np.cumsum([len(f) for f in frames]).astype(np.int64)
    starts = ends - [len(f) for f in frames]
    n = len(frames)
    ts = np.arange(n, dtype=np.float64) * 0.5
    orig = np.arange(n, dtype=np.int64) + 1000
    index = np.arange(n, dtype=np.int64)
    width = pcapvec.LINK_BYTES + pcapvec._IP_BYTES
    rows = pcapvec._take(buf, starts, width)
    batch = pcapvec.Frames(buf, linktype, starts, ends, ts, orig, index)
    want, want_slow = pcapvec._numpy_columns(batch, rows, 0)
    got, got_slow = pcapvec._native_columns(batch)
    assert got_slow.tolist() == want_slow.tolist(), "other frames go to the scalar decoder"
    assert [c.version for c in got] == [c.version for c in want]
    for g, w in zip(got, want, strict=True):
        for name, a, b in zip(w._fields[1:], g[1:], w[1:], strict=True):
            assert np.array_equal(a, b), f"IPv{w.version} column {name} differs from numpy's"


_WITHOUT_EXTENSION = """
import json, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "testbed.analysis._native":
            raise ImportError("blocked for the test")
sys.meta_path.insert(0, Block())
from testbed.analysis import native
from testbed.analysis.scan import scan_capture
assert not native.NATIVE
scan = scan_capture(sys.argv[1], json.loads(sys.argv[2]), [], sys.argv[3])
print(json.dumps(scan.to_json()))
"""


def test_a_scan_without_the_extension_is_the_same_with_one_notice() -> None:
    """A process where the C extension cannot be imported: one notice line on stderr and
    the scan of the seed capture exactly as with the extension."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from testbed.analysis.scan import scan_capture
    from testbed.run.manifest import Manifest

    seed = Path(__file__).resolve().parents[1] / "data" / "seed-run"
    manifest = Manifest.from_json(json.loads((seed / "manifest.json").read_text()))
    guests = {a: v for v, a in manifest.guests.items()}
    canary = manifest.canary or ""
    pcap = seed / "capture" / "gateway.pcap"
    out = subprocess.run([sys.executable, "-c", _WITHOUT_EXTENSION, str(pcap),
                          json.dumps(guests), canary], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stderr.count("\n") == 1 and "native capture helpers not built" in out.stderr, \
        f"a missing extension should be said once, in one line; stderr was {out.stderr!r}"
    assert native.NATIVE, "the native loops were not built: run `make setup`"
    want = scan_capture(pcap, guests, [], canary).to_json()
    assert json.loads(out.stdout) == json.loads(json.dumps(want)), \
        "the scan without the C extension differs from the scan with it"


def _columns(version: int, n: int, rng: np.random.Generator) -> object:
    """Random IP columns over a few addresses (guests, infrastructure, remotes) and ports."""
    from testbed.analysis.pcapvec import IPColumns

    pool = np.arange(1, 9, dtype=np.uint64)
    shape = (n,) if version == 4 else (n, 2)
    src, dst = (pool[rng.integers(0, len(pool), shape)] for _ in range(2))
    if version == 6:  # high words mostly 0, as the guests' (::1, ::4)
        src[:, 0] = rng.integers(0, 2, n)
        dst[:, 0] = rng.integers(0, 2, n)
    ints = [rng.integers(0, k, n).astype(np.int64) for k in (3, 4, 4)]
    proto, sport, dport = np.array([6, 17, 1])[ints[0]], ints[1] + 50, ints[2] + 440
    ts = rng.integers(0, 50, n) * 0.25
    length = rng.integers(40, 1500, n).astype(np.int64)
    zeros = np.zeros(n, dtype=np.int64)
    return IPColumns(version, src, dst, proto, sport, dport, ts, length, zeros, zeros, zeros,
                     zeros)


@pytest.mark.parametrize("seed", range(6))
def test_native_endpoint_rows_match_numpy(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Endpoint records (counts, bytes, first and last seen, attribution counters) from the C
    rows and hash reduction equal the numpy rows and sort, over many batches."""
    from testbed.analysis import endpoints

    if native.native_endpoint_rows is None:
        pytest.skip("the native loops were not built")
    v4 = {i.to_bytes(4, "big"): f"v{i % 3}" for i in (1, 2, 3)}
    v6 = {i.to_bytes(16, "big"): "v6" for i in (1, 4)}
    guests = {**v4, **v6}
    infra = {(5).to_bytes(4, "big"), (5).to_bytes(16, "big")}
    rng = np.random.default_rng(seed)
    batches = [_columns(int(rng.choice([4, 6])), int(rng.integers(1, 400)), rng)
               for _ in range(30)]
    monkeypatch.setattr(endpoints, "_REDUCE_AT", 64)  # reductions between batches

    def run() -> tuple[object, ...]:
        cols = endpoints._Columns(guests, infra)
        for c in batches:
            cols.add(c)
        return (*cols.result(infra), cols.attributed, cols.infrastructure, cols.unattributed)

    fast = run()
    for name in ("native_endpoint_rows", "native_group_reduce"):
        monkeypatch.setattr(native, name, None)
    assert fast == run()
    assert fast[0] and fast[1], "the batches should give endpoints and infrastructure"
    assert {len(k[1]) for k in fast[0]} == {4, 16}, "IPv4 and IPv6 endpoints both"


@pytest.mark.parametrize("seed", range(4))
def test_native_address_lookup_matches_numpy(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """`AddrIndex.find` through the C binary search equals numpy's searchsorted, for IPv4
    and IPv6 tables (several prefixes), hits and misses, empty tables and columns."""
    from testbed.analysis.addrindex import AddrIndex

    if native.native_addr_find is None:
        pytest.skip("the native loops were not built")
    rng = random.Random(seed)
    pool4 = [rng.randrange(1 << 32) for _ in range(12)] + [0, (1 << 32) - 1]
    pool6 = [(rng.choice([0, 1, 1 << 63, (1 << 64) - 1]), rng.randrange(1 << 64))
             for _ in range(12)]
    for size in (0, 1, 5, 12):
        table = {a.to_bytes(4, "big"): i for i, a in enumerate(pool4[:size])}
        table |= {(h << 64 | lo).to_bytes(16, "big"): 100 + i
                  for i, (h, lo) in enumerate(pool6[:size])}
        index = AddrIndex(table)
        for n in (0, 1, 300):
            a4 = np.array([rng.choice(pool4) for _ in range(n)], dtype=np.uint64)
            a6 = np.array([rng.choice(pool6) for _ in range(n)], dtype=np.uint64).reshape(-1, 2)
            fast = index.find(4, a4), index.find(6, a6)
            with monkeypatch.context() as m:
                m.setattr(native, "native_addr_find", None)
                slow = index.find(4, a4), index.find(6, a6)
            assert fast[0].tolist() == slow[0].tolist() and fast[1].tolist() == slow[1].tolist()


PCAP_CASES = [c for c in CASES if not c[0].startswith("pcapng")]


@pytest.mark.parametrize(("name", "buf", "start", "big"), PCAP_CASES,
                         ids=[c[0] for c in PCAP_CASES])
def test_native_pcap_batch_matches_numpy(monkeypatch: pytest.MonkeyPatch, name: str,
                                         buf: bytes, start: int, big: bool) -> None:
    """A batch of pcap records read by the C walk-and-check loop equals the walk plus
    numpy's checks: where it stops (cut, absurd or random records), counts and columns."""
    from testbed.analysis import pcapvec
    from testbed.analysis.decode import payload_decoder

    if native.native_pcap_records is None:
        pytest.skip("the native loops were not built")

    def batch() -> object:
        b = pcapvec.PcapBatcher(">" if big else "<", 1e-6, pcapvec.MAX_FRAME, 1)
        flows: dict[object, object] = {}
        out = b.run(buf, start, len(buf), payload_decoder(1), flows, [])  # type: ignore[arg-type]
        if out is None:
            return None, flows
        pos, k, packets, skipped, columns = out
        return (pos, k, packets, skipped,
                [[np.asarray(a).tolist() for a in c] for c in columns]), flows

    fast = batch()
    monkeypatch.setattr(native, "native_pcap_records", None)
    assert fast == batch()
