"""`scan_capture` (one pass, vectorised) against the scalar references, one per consumer."""

from __future__ import annotations

import itertools
import json
import random
import shutil
from pathlib import Path

import pytest

from testbed.analysis import pcap, pcapvec
from testbed.analysis.endpoints import _extract
from testbed.analysis.evidence import bursts, canary_in_pcap
from testbed.analysis.names import extract_names
from testbed.analysis.scan import CaptureScan, scan_capture

from . import pcapbuild as pb
from .test_names import client_hello

pytestmark = pytest.mark.usefixtures("native_loops")  # native and Python loops

T0 = 1_700_000_000.0
GUESTS = {"10.0.0.2": "regular", "10.0.0.3": "tom-en", "fd00::2": "tom-zh"}
INFRA = ["10.0.0.1"]
CANARY = "cnry-7f3a9c21-e5"
SEED = Path(__file__).resolve().parents[1] / "data" / "seed-run" / "capture" / "gateway.pcap"


def mixed_packets(seed: int) -> list[bytes]:
    """Names, canaries (whole and split), SYNs, idle gaps, IPv6 with extension headers,
    fragments and other traffic, shuffled between flows but in order within each."""
    rng = random.Random(seed)
    hello = client_hello("split.example.test")
    msg = b'{"text":"hi ' + CANARY.encode() + b'"}'
    answer = pb.dns_response("www.example.test", [("www.example.test", "CNAME", "e.cdn.test"),
                                                  ("e.cdn.test", "A", "203.0.113.5")])
    streams = [
        [pb.tcp("10.0.0.3", "198.51.100.4", 50000, 443, b"", flags=pb.TCP_SYN)]
        + [pb.tcp("10.0.0.3", "198.51.100.4", 50000, 443, hello[a:b])
           for a, b in ((0, 40), (40, 200), (200, len(hello)))],
        [pb.tcp("10.0.0.2", "203.0.113.9", 50001, 80, msg[:9]),
         pb.tcp("10.0.0.2", "203.0.113.9", 50001, 80, msg[9:17]),
         pb.tcp("10.0.0.2", "203.0.113.9", 50001, 80, msg[17:])],
        [pb.tcp("fd00::2", "2001:db8::7", 1, 5222, CANARY.encode()[:4]),
         pb.tcp("fd00::2", "2001:db8::7", 1, 5222, CANARY.encode()[4:] + CANARY.encode())],
        [pb.packet("10.0.0.1", "10.0.0.2", "udp", 53, 4000, answer)] * 3,
        [pb.tcp("10.0.0.2", "192.0.2.8", 4001, 80, b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")],
        [pb.packet("fd00::2", "2001:db8::9", "udp", 5000, 443, CANARY.encode(),
                   ext=[(0, b"\0" * 6)])] * 2,  # hop-by-hop: the scalar decoder's frames
        [pb.tcp(rng.choice(list(GUESTS)[:2]), f"192.0.2.{rng.randrange(1, 9)}",
                rng.randrange(1024, 1100), 443, rng.randbytes(rng.randrange(0, 60)),
                flags=rng.choice((pb.TCP_SYN, pb.TCP_ACK, pb.TCP_PSH_ACK)))
         for _ in range(60)],
        [pb.tcp("198.51.100.4", "10.0.0.3", 443, 50000, b"\x16\x03\x03\x00\x10" + bytes(16))],
    ]
    out = []
    while any(streams):
        s = rng.choice([s for s in streams if s])
        out.append(s.pop(0))
    return out


def write(tmp_path: Path, packets: list[bytes], fmt: str, seed: int) -> Path:
    rng = random.Random(seed)
    t = T0
    frames = []
    for p in packets:
        t += rng.choice((0.01, 0.2, 1.5))  # some gaps end bursts
        frames.append(pb.Frame(t, pb.ether(p, tags=(0x8100,) * rng.choice((0, 0, 1, 3)))))
    frames.insert(5, pb.Frame(t, pb.arp()))
    data = (pb.pcap_bytes(frames) if fmt == "pcap"
            else pb.pcapng_bytes([(pb.ETH, None), (pb.ETH, 9)],
                                 [(i % 2, f) for i, f in enumerate(frames)]))
    return pb.write(tmp_path / f"c.{fmt}", data)


def assert_like_references(path: Path) -> CaptureScan:
    scan = scan_capture(path, GUESTS, INFRA, CANARY)
    assert scan.endpoints == _extract(path, GUESTS, INFRA, fast=False)
    assert scan.names.to_json() == extract_names(path, GUESTS).to_json()
    assert list(scan.canary_hits) == canary_in_pcap(path, GUESTS, CANARY)
    assert {k: list(v) for k, v in scan.bursts.items()} == bursts(path, GUESTS)
    return scan


@pytest.fixture(params=["large", "small"])
def batching(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "small":  # many batches: state carried between them
        monkeypatch.setattr(pcapvec, "_FAST_CHUNK", 700)
        monkeypatch.setattr(pcapvec, "_BATCH", 16)
    return str(request.param)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scan_equals_the_references(tmp_path: Path, batching: str, fmt: str, seed: int) -> None:
    scan = assert_like_references(write(tmp_path, mixed_packets(seed), fmt, seed))
    assert scan.names.names_for("198.51.100.4") == ["split.example.test"]
    assert {e.address for e in scan.canary_hits} == {"203.0.113.9", "2001:db8::7", "2001:db8::9"}


def name_packets(seed: int) -> list[bytes]:
    """Many names on few flows, in every form the name consumer tells apart: ClientHellos
    whole in one segment (IPv4 and IPv6, from guests and from others), split ones, whole
    ones on a flow in the middle of a split one, a flow whose hello restarts after one;
    DNS responses repeated with other ids, to other guests, cut short or garbled."""
    rng = random.Random(seed)
    hosts = [f"h{i}.example.test" for i in range(6)]
    hellos = {h: client_hello(h) for h in hosts}
    streams: list[list[bytes]] = []
    for i in range(30):
        h = rng.choice(hosts)
        src = rng.choice([*GUESTS, "192.0.2.77"])
        dst = f"2001:db8::{i + 1:x}" if ":" in src else f"198.51.100.{i + 1}"
        hello = hellos[h]
        kind = rng.choice(("whole", "split", "whole-then-split", "split-with-whole"))
        port = 40000 + i
        if kind == "whole":
            pkts = [hello]
        elif kind == "split":
            cut = rng.randrange(1, len(hello))
            pkts = [hello[:cut], hello[cut:]]
        elif kind == "whole-then-split":
            pkts = [hello, hellos[rng.choice(hosts)][:30], hellos[rng.choice(hosts)][30:]]
        else:  # a whole hello where the reassembly of a split one goes on
            pkts = [hello[:50], hellos[rng.choice(hosts)], hello[50:]]
        streams.append([pb.tcp(src, dst, port, 443, p) for p in pkts])
    for i in range(40):
        guest = rng.choice(list(GUESTS))
        ans = pb.dns_response(f"d{i % 5}.example.test",
                              [(f"d{i % 5}.example.test", "A", f"203.0.113.{i % 5 + 1}")],
                              txid=rng.randrange(1 << 16))
        if i % 13 == 0:
            ans = ans[:rng.randrange(1, len(ans))]
        elif i % 11 == 0:
            ans = ans[:12] + rng.randbytes(len(ans) - 12)
        resolver = "fd00::1" if ":" in guest else "10.0.0.1"
        streams.append([pb.packet(resolver, guest, "udp", 53, 4000 + i, ans)])
    out = []
    while any(streams):
        st = rng.choice([st for st in streams if st])
        out.append(st.pop(0))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_scan_names_equal_the_reference(tmp_path: Path, batching: str, seed: int) -> None:
    """The name consumer's fast paths (ClientHellos out of order, DNS repeats dropped per
    batch) give the scalar reference's index."""
    path = write(tmp_path, name_packets(seed), "pcap", seed)
    scan = scan_capture(path, GUESTS, INFRA, CANARY)
    want = extract_names(path, GUESTS).to_json()
    assert scan.names.to_json() == want, \
        "the one-pass scan found other names than the scalar reference"
    assert len(want["addresses"]) >= 10, "the generated capture should hold many names"


def test_scan_of_the_seed_capture(tmp_path: Path, batching: str) -> None:
    assert assert_like_references(SEED).endpoints.stats.packets_read == 2850
    seed_guests = {"10.77.0.10": "regular", "10.77.0.11": "tom-en", "10.77.0.12": "tom-zh"}
    assert scan_capture(SEED, seed_guests).names.to_json() == \
        extract_names(SEED, seed_guests).to_json()


def test_scan_of_a_damaged_capture(tmp_path: Path) -> None:
    data = pb.pcap_bytes([pb.Frame(T0 + i, pb.ether(p)) for i, p in enumerate(mixed_packets(4))])
    path = pb.write(tmp_path / "d.pcap", data[:-7])
    scan = assert_like_references(path)
    assert scan.endpoints.stats.warnings and scan.names.warnings == scan.endpoints.stats.warnings


def test_scan_json_round_trip(tmp_path: Path) -> None:
    scan = scan_capture(write(tmp_path, mixed_packets(5), "pcap", 5), GUESTS, INFRA, CANARY)
    again = CaptureScan.from_json(scan.to_json())
    assert again.to_json() == scan.to_json() and again.bursts == scan.bursts


def test_the_capture_is_read_once_per_analysis(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`testbed analyze` reads the capture in one pass, and the flow file in one; a
    re-analysis with other GeoIP databases reads neither (the scans are kept in
    analysis/)."""
    from testbed.analysis import flows
    from testbed.orchestrator.analyze import analyze_run, derived_run
    from testbed.orchestrator.rundir import RunDir

    run_path = tmp_path / "run"
    shutil.copytree(SEED.parents[1], run_path, ignore=shutil.ignore_patterns("expected"))
    # logged in files: the files are read in forked children
    pcap_log, flow_log = tmp_path / "pcap-reads", tmp_path / "flow-reads"
    real_open = open

    class Counted:
        """The capture file, counting the bytes read from it; logged when closed."""

        def __init__(self, f: object) -> None:
            self.f, self.bytes = f, 0

        def read(self, n: int = -1) -> bytes:
            data: bytes = self.f.read(n)  # type: ignore[attr-defined]
            self.bytes += len(data)
            return data

        def close(self) -> None:
            self.f.close()  # type: ignore[attr-defined]
            with real_open(pcap_log, "a") as log:
                log.write(f"{self.bytes}\n")

        def __getattr__(self, name: str) -> object:
            return getattr(self.f, name)

        def __enter__(self) -> Counted:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    def counting_open(file: object, mode: str = "r", *args: object, **kw: object) -> object:
        f = real_open(file, mode, *args, **kw)  # type: ignore[call-overload]
        if Path(str(file)).name == "flows.mitm":
            with real_open(flow_log, "a") as log:
                log.write(f"{file}\n")
        return Counted(f) if Path(str(file)).name == "gateway.pcap" else f

    def reads() -> list[int]:
        return [int(n) for n in pcap_log.read_text().split()] if pcap_log.exists() else []

    monkeypatch.setattr(pcap, "open", counting_open, raising=False)
    monkeypatch.setattr(flows, "open", counting_open, raising=False)
    run = RunDir(run_path)
    analyze_run(run)
    size = SEED.stat().st_size
    assert [n for n in reads() if n > 4] == [size]  # the format sniff reads 4 bytes
    assert len(flow_log.read_text().splitlines()) == 1
    pcap_log.unlink()
    flow_log.unlink()
    other = derived_run(run, [Path("unused.mmdb")])
    lab_db = run_path / "analysis" / "geo"
    analyze_run(other, sorted(lab_db.glob("*.mmdb")))
    assert reads() == [] and not flow_log.exists()
    assert (other.path / "analysis" / "endpoints.csv").exists()
    saved = json.loads((other.path / "analysis" / "endpoints.json").read_text())
    assert saved["capture"] == str(other.pcap)  # as before: the re-analysis's own link


def test_flow_scan_equals_the_references() -> None:
    """One pass over the seed run's flow file gives what the two readers give."""
    from testbed.analysis.evidence import canary_in_flows
    from testbed.analysis.flowscan import FlowScan, scan_flows
    from testbed.analysis.names import NameIndex, names_from_flows

    flows = SEED.parent / "flows.mitm"
    guests = {"10.77.0.10": "regular", "10.77.0.11": "tom-en", "10.77.0.12": "tom-zh",
              "10.77.0.13": "control"}
    canary = "CANARY-01124852798c"
    found = scan_flows(flows, guests, canary)
    assert found.names.to_json() == names_from_flows(NameIndex(), flows, guests).to_json()
    assert list(found.canary_hits) == canary_in_flows(flows, guests, canary)
    assert found.canary_hits and len(found.names) > 0
    assert FlowScan.from_json(found.to_json()).to_json() == found.to_json()
    assert scan_flows(flows, guests, "").names.to_json() == found.names.to_json()


def test_a_scan_saved_by_other_code_is_not_reused(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from testbed.orchestrator import scancache
    from testbed.orchestrator.analyze import analyze_run
    from testbed.orchestrator.rundir import RunDir
    from testbed.run import files

    run_path = tmp_path / "run"
    shutil.copytree(SEED.parents[1], run_path, ignore=shutil.ignore_patterns("expected"))
    analyze_run(RunDir(run_path))
    saved = json.loads((run_path / files.CAPTURE_SCAN).read_text())
    assert saved["key"]["code"] == scancache._code()
    monkeypatch.setattr(scancache, "_code", lambda: "an older testbed")
    analyze_run(RunDir(run_path))
    rescanned = json.loads((run_path / files.CAPTURE_SCAN).read_text())
    assert rescanned["key"]["code"] == "an older testbed"  # scanned again, and saved
    assert rescanned["scan"] == saved["scan"]


@pytest.mark.parametrize("seed", range(10, 16))
def test_scan_canary_in_dense_splits_equals_the_reference(tmp_path: Path, batching: str,
                                                          seed: int) -> None:
    """Flows whose bytes are canaries in every encoding, their prefixes and repeats, cut into
    segments of 1 to 30 bytes: every count and label as the per-packet reference finds it."""
    from testbed.analysis.evidence import canary_forms

    rng = random.Random(seed)
    forms = [b for _, b in canary_forms(CANARY)]
    streams = []
    for k, (src, dst) in enumerate([("10.0.0.2", "203.0.113.9"), ("10.0.0.3", "203.0.113.9"),
                                    ("fd00::2", "2001:db8::7"), ("10.0.0.2", "192.0.2.8")]):
        data = b"".join(rng.choice([f, f[: rng.randrange(1, len(f))], b"x", f + f[:3]])
                        for f in rng.choices(forms, k=40))
        cuts = sorted({0, len(data), *(rng.randrange(len(data)) for _ in range(len(data) // 8))})
        streams.append([pb.tcp(src, dst, 40000 + k, 80, data[a:b])
                        for a, b in itertools.pairwise(cuts)])
    packets = []
    while any(streams):
        s = rng.choice([s for s in streams if s])
        packets.append(s.pop(0))
    scan = assert_like_references(write(tmp_path, packets, "pcap", seed))
    assert len(scan.canary_hits) == 4


@pytest.mark.parametrize("memory", [0, 1, 2])
def test_scan_names_with_a_small_dns_memory_equal_the_reference(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batching: str, memory: int) -> None:
    """The DNS responses remembered across batches are forgotten past the limit: the names
    stay those of the reference."""
    from testbed.analysis import consumers

    monkeypatch.setattr(consumers, "_DNS_MEMORY", memory)
    path = write(tmp_path, mixed_packets(4), "pcap", 4)
    assert scan_capture(path, GUESTS, INFRA, CANARY).names.to_json() == \
        extract_names(path, GUESTS).to_json()
