"""Replicate a recorded capture (classic pcap) to N packets, copies shifted in time.

Used by `bench_analyze.py`: the lab run's own capture (guest addresses, real DNS, TLS,
HTTP and canary payloads) stands for a long run. Copy k is shifted by k times the
capture's duration plus one second, so timestamps keep increasing and bursts stay bursts.
"""

from __future__ import annotations

import struct
from pathlib import Path

_REC = struct.Struct("<IIII")


def _records(data: bytes) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    if data[:4] != b"\xd4\xc3\xb2\xa1":
        raise SystemExit("replicate: only little-endian microsecond pcap is supported")
    out = []
    p = 24
    while p + 16 <= len(data):
        sec, usec, incl, _orig = _REC.unpack_from(data, p)
        out.append((sec * 1_000_000 + usec, _orig, data[p + 16 : p + 16 + incl]))
        p += 16 + incl
    return data[:24], out


def replicate(source: Path, target: Path, packets: int) -> int:
    """Write `packets` records (the source's, repeated and time-shifted) to `target`."""
    header, recs = _records(source.read_bytes())
    span = recs[-1][0] - recs[0][0] + 1_000_000
    written = 0
    with open(target, "wb") as f:
        f.write(header)
        copy = 0
        while written < packets:
            shift = copy * span
            parts = []
            for usec, orig, frame in recs[: packets - written]:
                t = usec + shift
                parts.append(_REC.pack(t // 1_000_000, t % 1_000_000, len(frame), orig))
                parts.append(frame)
            f.write(b"".join(parts))
            written += min(len(recs), packets - written)
            copy += 1
    return written
