#!/usr/bin/env python3
"""Benchmark: the project's `extract_endpoints` against tcpdump and tshark.

Writes a synthetic Ethernet pcap (default 2 million frames: IPv4 and IPv6; TCP, UDP,
ICMP/ICMPv6; tens of thousands of endpoints; a few guest addresses; some unattributed
traffic and ARP), then times, each pinned to the same single CPU:

- `extract_endpoints` in a subprocess (peak RSS from getrusage(RUSAGE_CHILDREN));
- `tcpdump -r FILE -w /dev/null`: the packet-reading floor (libpcap, no decoding);
- `tshark -r FILE -q -z conv,ip`: what an analyst would run for the same question.

Targets: >= 1M packets/s on one core, faster than tshark, peak memory < 200 MB.
Exit status 0 when every target is met, 1 otherwise.

    .venv/bin/python benchmarks/bench_endpoints.py [--packets N] [--keep FILE] [--cpu N]
                                                   [--reuse] [--skip-tshark]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_PPS = 1_000_000
TARGET_RSS_MB = 200

GUESTS_V4 = {"10.0.0.11": "regular", "10.0.0.12": "tom-en", "10.0.0.13": "tom-zh"}
GUESTS_V6 = {"fd00::11": "regular", "fd00::12": "tom-en", "fd00::13": "tom-zh"}
INFRA = ["10.0.0.1", "fd00::1"]

_REC = struct.Struct("<IIII")
_ETH = struct.Struct("!6s6sH")
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_ICMP = struct.Struct("!BBHHH")
_MAC_A = bytes.fromhex("020000000001")
_MAC_B = bytes.fromhex("020000000002")
_ZEROS = bytes(1600)
# frame sizes on the wire: ACKs, small requests, mid-size, full-size segments
_SIZES = [60, 66, 90, 150, 300, 600, 1000, 1514]
_SIZE_WEIGHTS = [30, 12, 10, 10, 10, 8, 5, 15]


def _l4(rng: random.Random, proto: int, sport: int, dport: int, room: int) -> bytes:
    if proto == 6:
        flags = rng.choice((0x10, 0x18, 0x02, 0x12, 0x11))
        return _TCP.pack(sport, dport, rng.getrandbits(32), rng.getrandbits(32), 5 << 4, flags,
                         65535, 0, 0) + _ZEROS[: max(0, room - 20)]
    if proto == 17:
        body = max(0, room - 8)
        return _UDP.pack(sport, dport, 8 + body, 0) + _ZEROS[:body]
    return _ICMP.pack(8 if proto == 1 else 128, 0, 0, 1, 1) + _ZEROS[: max(0, room - 8)]


def _frame(rng: random.Random, src: bytes, dst: bytes, proto: int, sport: int, dport: int,
           size: int) -> bytes:
    if len(src) == 4:
        body = _l4(rng, proto, sport, dport, max(8, size - 34))
        ip = _IP4.pack(0x45, 0, 20 + len(body), rng.getrandbits(16), 0x4000, 64, proto, 0,
                       src, dst)
        return _ETH.pack(_MAC_A, _MAC_B, 0x0800) + ip + body
    body = _l4(rng, proto, sport, dport, max(8, size - 54))
    ip = _IP6.pack(6 << 28, len(body), proto, 64, src, dst)
    return _ETH.pack(_MAC_A, _MAC_B, 0x86DD) + ip + body


def _remote(rng: random.Random, v6: bool) -> bytes:
    if v6:
        return bytes.fromhex("2a00") + rng.getrandbits(112).to_bytes(14, "big")
    while True:  # global unicast-looking IPv4
        a = rng.randrange(1, 224)
        if a not in (10, 127, 172, 192):
            return bytes([a]) + rng.getrandbits(24).to_bytes(3, "big")


def build_pool(rng: random.Random, size: int, remotes: int) -> tuple[list[bytes], list[float]]:
    """Distinct frames (one per endpoint and direction) and skewed cumulative weights."""
    import ipaddress

    g4 = [ipaddress.ip_address(a).packed for a in GUESTS_V4]
    g6 = [ipaddress.ip_address(a).packed for a in GUESTS_V6]
    infra = [ipaddress.ip_address(a).packed for a in INFRA]
    r4 = [_remote(rng, False) for _ in range(remotes)]
    r6 = [_remote(rng, True) for _ in range(max(1, remotes // 8))]
    frames: list[bytes] = []
    for _ in range(size):
        x = rng.random()
        v6 = rng.random() < 0.15
        guest = rng.choice(g6 if v6 else g4)
        if x < 0.03:  # DNS etc. to lab infrastructure
            remote, proto, port = infra[1 if v6 else 0], 17, 53
        elif x < 0.08:  # neither side is a guest: unattributed
            guest, remote = _remote(rng, v6), _remote(rng, v6)
            proto, port = rng.choice((6, 17)), rng.choice((443, 80, 3478))
        else:
            remote = rng.choice(r6 if v6 else r4)
            proto = rng.choices((6, 17, 58 if v6 else 1), (75, 20, 5))[0]
            port = rng.choice((443, 443, 443, 80, 8080, 3478, 5222, 19302, 33033))
        if proto in (1, 58):
            port = 0
        eph = rng.randrange(32768, 61000) if proto in (6, 17) else 0
        size_ = rng.choices(_SIZES, _SIZE_WEIGHTS)[0]
        if rng.random() < 0.5:
            frames.append(_frame(rng, guest, remote, proto, eph, port, size_))
        else:
            frames.append(_frame(rng, remote, guest, proto, port, eph, size_))
    # a few ARP frames (non-IP: skipped by the reader, counted by the tools)
    arp = _ETH.pack(b"\xff" * 6, _MAC_A, 0x0806) + bytes(28) + bytes(18)
    frames.extend([arp] * max(1, size // 500))
    # Zipf-like popularity: a few heavy flows, a long tail
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(frames))]
    rng.shuffle(weights)
    return frames, list(itertools.accumulate(weights))


def write_capture(path: Path, packets: int, seed: int = 1) -> tuple[int, int]:
    """Write `packets` frames to `path` (pcap, Ethernet, microseconds); return
    (IP packets, bytes written)."""
    rng = random.Random(seed)
    frames, cum = build_pool(rng, size=min(60_000, max(1_000, packets // 30)), remotes=20_000)
    records = [(_REC.pack(0, 0, len(f), len(f))[8:], f, f[12:14] != b"\x08\x06")
               for f in frames]
    total = cum[-1]
    ts = 1_714_521_600_000_000  # microseconds
    ip_packets = 0
    written = 24
    pack_ts = struct.Struct("<II").pack
    rand = rng.random
    pick = bisect.bisect_right
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        done = 0
        while done < packets:
            n = min(200_000, packets - done)
            parts: list[bytes] = []
            append = parts.append
            for _ in range(n):
                lens, frame, is_ip = records[pick(cum, rand() * total)]
                ts += 37
                append(pack_ts(ts // 1_000_000, ts % 1_000_000))
                append(lens)
                append(frame)
                ip_packets += is_ip
            chunk = b"".join(parts)
            f.write(chunk)
            written += len(chunk)
            done += n
    return ip_packets, written


def count_capture(path: Path) -> int:
    """IP frames in a capture written by `write_capture` (for --reuse)."""
    ip = 0
    with open(path, "rb") as f:
        f.read(24)
        while True:
            hdr = f.read(16)
            if len(hdr) < 16:
                return ip
            incl = _REC.unpack(hdr)[2]
            frame = f.read(incl)
            ip += frame[12:14] != b"\x08\x06"


def _pin(cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})


def run_timed(cmd: list[str], cpu: int) -> tuple[float, int, int, str]:
    """Run `cmd` pinned to `cpu`; return (seconds, exit status, peak RSS in KiB, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: _pin(cpu))
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    # communicate() reaped the child: its own peak comes from the RUSAGE_CHILDREN maximum
    # only if it is the largest so far, so callers measure the project first.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode:
        sys.stderr.write(err.decode(errors="replace")[-2000:])
    return elapsed, proc.returncode, peak, out.decode(errors="replace")


def worker(capture: str) -> None:
    """In the child: run extract_endpoints once and print its timing and counters."""
    from testbed.analysis.endpoints import extract_endpoints

    guests = {**GUESTS_V4, **GUESTS_V6}
    start = time.perf_counter()
    report = extract_endpoints(capture, guests, INFRA)
    elapsed = time.perf_counter() - start
    s = report.stats
    print(json.dumps({
        "seconds": elapsed,
        "packets_read": s.packets_read,
        "frames_read": s.frames_read,
        "attributed": s.packets_attributed,
        "infrastructure": s.packets_infrastructure,
        "unattributed": s.packets_unattributed,
        "endpoints": len(report.endpoints),
        "warnings": len(s.warnings),
    }))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=2_000_000, help="frames to write")
    ap.add_argument("--keep", type=Path, metavar="FILE", help="write the capture here and keep it")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last)")
    ap.add_argument("--reuse", action="store_true",
                    help="with --keep: reuse FILE when it exists instead of rewriting it")
    ap.add_argument("--skip-tshark", action="store_true",
                    help="do not run tshark (it takes minutes on large captures)")
    ap.add_argument("--worker", metavar="CAPTURE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return 0

    cpus = sorted(os.sched_getaffinity(0))
    cpu = args.cpu if args.cpu is not None else cpus[-1]
    tmpdir = None
    if args.keep:
        capture = args.keep
    else:
        tmpdir = tempfile.mkdtemp(prefix="bench-endpoints-")
        capture = Path(tmpdir) / "bench.pcap"
    try:
        if args.reuse and args.keep and capture.exists():
            ip_packets, size = count_capture(capture), capture.stat().st_size
            print(f"capture: {capture}  reused, {args.packets:,} frames ({ip_packets:,} IP), "
                  f"{size / 1e6:,.0f} MB")
        else:
            t0 = time.perf_counter()
            ip_packets, size = write_capture(capture, args.packets)
            gen = time.perf_counter() - t0
            print(f"capture: {capture}  {args.packets:,} frames ({ip_packets:,} IP), "
                  f"{size / 1e6:,.0f} MB, written in {gen:.1f} s "
                  f"({args.packets / gen:,.0f} frames/s)")
        print(f"pinned to CPU {cpu} (of {len(cpus)})\n")

        results: dict[str, float] = {}
        # 1. the project (first, so RUSAGE_CHILDREN's maximum is its own peak)
        wall, rc, peak_kb, out = run_timed(
            [sys.executable, __file__, "--worker", str(capture)], cpu)
        if rc:
            print(f"extract_endpoints failed (exit {rc})")
            return 1
        stats = json.loads(out)
        inner = stats["seconds"]
        results["project"] = args.packets / inner
        peak_mb = peak_kb / 1024
        print(f"{'extract_endpoints':<22}{inner:7.2f} s  {results['project']:>12,.0f} packets/s  "
              f"(process wall {wall:.2f} s; peak RSS {peak_mb:.0f} MB)")
        print(f"{'':<22}read {stats['packets_read']:,} IP packets, {stats['endpoints']:,} "
              f"endpoints, {stats['unattributed']:,} unattributed, {stats['warnings']} warnings")
        if stats["packets_read"] != ip_packets:
            print(f"  MISMATCH: expected {ip_packets:,} IP packets")

        # 2. tcpdump and tshark
        tools = {
            "tcpdump": ["tcpdump", "-n", "-r", str(capture), "-w", "/dev/null"],
            "tshark": ["tshark", "-n", "-r", str(capture), "-q", "-z", "conv,ip"],
        }
        if args.skip_tshark:
            del tools["tshark"]
            print(f"{'tshark':<22}skipped (--skip-tshark)")
        for name, cmd in tools.items():
            if shutil.which(cmd[0]) is None:
                print(f"{name:<22}not installed: skipped (apt-get install {name})")
                continue
            wall, rc, _, out = run_timed(cmd, cpu)
            if rc:
                print(f"{name:<22}failed (exit {rc}): skipped")
                continue
            results[name] = args.packets / wall
            print(f"{name:<22}{wall:7.2f} s  {results[name]:>12,.0f} packets/s")

        print()
        pps = results["project"]
        for name in ("tcpdump", "tshark"):
            if name in results:
                ratio = pps / results[name]
                print(f"project vs {name:<8} {ratio:6.2f}x "
                      f"({'faster' if ratio >= 1 else 'slower'})")
        checks = [
            (f">= {TARGET_PPS:,} packets/s on one core", pps >= TARGET_PPS, f"{pps:,.0f}"),
            ("faster than tshark", results.get("tshark") is None or pps > results["tshark"],
             "skipped" if "tshark" not in results else f"{pps / results['tshark']:.2f}x"),
            (f"peak memory < {TARGET_RSS_MB} MB", peak_mb < TARGET_RSS_MB, f"{peak_mb:.0f} MB"),
        ]
        print("\nTargets")
        for what, ok, value in checks:
            print(f"  {'MET ' if ok else 'MISS'}  {what}: {value}")
        return 0 if all(ok for _, ok, _ in checks) else 1
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
