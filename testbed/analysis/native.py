"""The fast path's loops in native code, each beside its Python reference.

Stated speed requirement (issue 10): the whole analyze stage at >= 1 M packets/s and
>= 0.25x `tcpdump -r FILE -w /dev/null` (~0.44 s for the 1 M-packet benchmark capture, of
which the interpreter, imports, placement, verdicts and report take ~0.35 s of CPU). These
are the loops of the fast path that numpy cannot express, or that cost more in numpy's many
calls per batch than the scan can afford, so they are hand-written in C (`_native.c`,
`_native_frames.c`, `_native_groups.c`, built by setuptools at `pip install -e .`, see
setup.py). With them the one scan of a 1 M-packet lab capture takes ~0.23 s of CPU (all
numpy and Python: ~0.47 s):
- the record-header walk: each record's offset depends on the previous record's length.
  In Python ~0.5 us per record, 0.2 s of the 1.2 s a 1 M-packet analysis took; in C ~10 ns;
- the payload gather of the canary search (a flow's payloads joined in capture order):
  one slice and one list item per payload in Python, one memcpy per payload in C;
- the ClientHello SNI walk of the name consumer (~22 k ClientHellos per million packets of
  a lab run): `payloads.client_hello_sni` per message plus its slicing and calls cost
  ~0.1 s a million packets; the C walk (same rules, same result) ~5 ms;
- the first-seen filter of DNS responses (~100 k per million packets of a lab run, nearly
  all repeats but for their id): a slice, a tuple and a set look-up each in Python, ~0.05 s
  a million packets; in C one hash and one comparison each.
The tests run every capture case through both implementations. Without the extension the
Python references are used, with a one-line notice on stderr: slower, never different.

- `walks()` -> (pcap walk, pcapng walk), each `walk(buf, pos, count, big) -> int64 array`:
  * pcap: record offsets from `pos`; each offset is taken, then the walk stops when the
    record's captured length (header bytes 8..12) is past the buffer, else moves by 16 +
    that length; at most `count` offsets;
  * pcapng: the run of enhanced packet blocks (type 6) from `pos`; it stops at a block
    header past the buffer or of another type, else moves by the block's total length.
  Both only collect offsets: `pcapvec` checks every record.
- `gather()` -> `gather(buf, starts, ends) -> bytes`: `buf[s:e]` for each (s, e) of the
  int64 arrays (offsets >= 0), concatenated.
- `snis()` -> `snis(buf, starts, ends) -> list[str]`: for each ClientHello handshake message
  `buf[s:e]`, `payloads.client_hello_sni` of it ('' when it has none).
- `first_seen()` -> `first_seen(buf, starts, ends, tags) -> int64 array`: the rows (in
  order) whose `(tags[i], buf[starts[i]:ends[i]])` is not that of an earlier row.
- `native_pcap_records`: the pcap walk and the record checks of `pcapvec.PcapBatcher.run`
  (its reference) in one loop, with the header fields;
- `native_addr_find`: guest and infrastructure look-ups, a binary search per address
  (reference: `addrindex.AddrIndex.find` with numpy, ~0.03 s a million packets);
- `native_frame_columns`: a batch's frames to IP columns in one loop (link layer, IPv4/IPv6,
  ports, TCP flags, payload bounds), used by `pcapvec._native_columns`; its reference is
  the numpy `pcapvec._numpy_columns` (~0.1 s a million packets; the loop ~0.02 s).
- `native_group_reduce`, `native_group_ids`: rows of equal keys grouped through a hash table
  instead of a sort: the endpoint reduction (~0.07 s a million packets with numpy's lexsort,
  its reference) and the burst groups;
- `native_endpoint_rows`: a batch's endpoint rows (attribution, keys) made and reduced in
  one loop (reference: the numpy half of `endpoints._Columns.add`, ~0.03 s a million);
- `native_burst_starts`: the burst test per row in capture order with each group's latest
  time (reference: `BurstConsumer`'s numpy running maximum over sorted ranks, ~0.04 s);
- `native_canary_scan`: the canary search per packet of each flow direction, with the
  flow's tail, exactly as `evidence.canary_in_pcap` (the payloads searched joined, one
  memmem per form); the numpy search over flow-ordered streams (~0.07 s a million packets)
  is its reference in the fast path.
"""

from __future__ import annotations

import functools
import struct
import sys
from array import array
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

T = TypeVar("T")

__all__ = ["NATIVE", "FirstSeen", "Gather", "Snis", "Walk", "first_seen", "gather", "snis",
           "walks"]

I64 = NDArray[np.int64]
Walk = Callable[[bytes, int, int, bool], I64]
Gather = Callable[[bytes, I64, I64], bytes]
Snis = Callable[[bytes, I64, I64], list[str]]
FirstSeen = Callable[[bytes, I64, I64, I64], I64]


def _walk_py(buf: bytes, pos: int, count: int, big: bool, pcapng: bool) -> I64:
    """The reference of `_native.c`'s walk: record offsets from `pos`, classic pcap (each
    offset taken, then its 16-byte header read) or a run of pcapng enhanced packet blocks
    (type 6, taken once its 8-byte head is read); a header past the data ends the walk
    (pcapvec checks every offset)."""
    offs = array("q")
    head = struct.Struct(">II" if big else "<II").unpack_from
    p = pos
    try:
        for _ in range(count):
            if not pcapng:
                offs.append(p)
                p += 16 + head(buf, p + 4)[1]  # the captured length, at +8
                continue
            btype, tlen = head(buf, p)
            if btype != 6:
                break
            offs.append(p)
            p += tlen
    except struct.error:
        pass
    return np.frombuffer(offs, dtype=np.int64)


def _gather_py(buf: bytes, starts: I64, ends: I64) -> bytes:
    return b"".join([buf[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)])


def _snis_py(buf: bytes, starts: I64, ends: I64) -> list[str]:
    from .payloads import client_hello_sni

    return [client_hello_sni(buf[a:b]) for a, b in zip(starts.tolist(), ends.tolist(),
                                                        strict=True)]


def _first_seen_py(buf: bytes, starts: I64, ends: I64, tags: I64) -> I64:
    seen: set[tuple[int, bytes]] = set()
    out = []
    for i, (a, b, t) in enumerate(zip(starts.tolist(), ends.tolist(), tags.tolist(),
                                      strict=True)):
        key = (t, buf[max(a, 0):max(b, 0)])
        if key not in seen:
            seen.add(key)
            out.append(i)
    return np.array(out, dtype=np.int64)


python_walk: tuple[Walk, Walk] = (functools.partial(_walk_py, pcapng=False),
                                   functools.partial(_walk_py, pcapng=True))
python_gather: Gather = _gather_py
python_snis: Snis = _snis_py
python_first_seen: FirstSeen = _first_seen_py
native_walk: tuple[Walk, Walk] | None = None
native_gather: Gather | None = None
native_snis: Snis | None = None
native_first_seen: FirstSeen | None = None
# `pcapvec._native_columns` calls it (its reference: `pcapvec._numpy_columns`)
native_frame_columns: Callable[..., tuple[int, int, int]] | None = None
# `pcapvec.PcapBatcher._run_native` (reference: the walk plus `PcapBatcher.run`'s checks)
native_pcap_records: Callable[..., int] | None = None
# `endpoints._Columns._reduce` (reference: its sort) and `bursts.BurstConsumer` (reference:
# its sorts) call these
native_group_ids: Callable[..., int] | None = None
native_group_reduce: Callable[..., int] | None = None
native_endpoint_rows: Callable[..., tuple[int, int, int, int]] | None = None
native_addr_find: Callable[..., None] | None = None  # reference: `addrindex` with numpy
native_burst_starts: Callable[..., None] | None = None
# `canaries.CanaryConsumer` (reference: `evidence.canary_in_pcap`, and its numpy search)
native_canary_scan: Callable[..., None] | None = None

try:
    from ._native import addr_find as _addr_find_c
    from ._native import burst_starts as _burst_starts_c
    from ._native import canary_scan as _canary_scan_c
    from ._native import endpoint_rows as _endpoint_rows_c
    from ._native import first_seen as _first_seen_c  # type: ignore[import-not-found]
    from ._native import frame_columns as _frame_columns_c
    from ._native import gather as _gather_c
    from ._native import group_ids as _group_ids_c
    from ._native import group_reduce as _group_reduce_c
    from ._native import pcap_offsets, pcapng_offsets
    from ._native import pcap_records as _pcap_records_c
    from ._native import snis as _snis_c
except ImportError:  # not built (no compiler at install time): the references
    NATIVE = False
else:
    NATIVE = True

    def _pcap_c(buf: bytes, pos: int, count: int, big: bool) -> I64:
        return np.frombuffer(pcap_offsets(buf, pos, count, big), dtype=np.int64)

    def _pcapng_c(buf: bytes, pos: int, count: int, big: bool) -> I64:
        return np.frombuffer(pcapng_offsets(buf, pos, count, big), dtype=np.int64)

    def _gather(buf: bytes, starts: I64, ends: I64) -> bytes:
        return _gather_c(buf, np.ascontiguousarray(starts, dtype=np.int64),
                         np.ascontiguousarray(ends, dtype=np.int64))

    def _snis(buf: bytes, starts: I64, ends: I64) -> list[str]:
        found = _snis_c(buf, np.ascontiguousarray(starts, dtype=np.int64),
                        np.ascontiguousarray(ends, dtype=np.int64))
        return ["" if b is None else b.decode("ascii", "replace") for b in found]

    def _first_seen(buf: bytes, starts: I64, ends: I64, tags: I64) -> I64:
        return np.frombuffer(_first_seen_c(buf, *(np.ascontiguousarray(x, dtype=np.int64)
                                                  for x in (starts, ends, tags))),
                             dtype=np.int64)

    native_walk = (_pcap_c, _pcapng_c)
    native_frame_columns = _frame_columns_c
    native_pcap_records = _pcap_records_c
    native_group_ids = _group_ids_c
    native_group_reduce = _group_reduce_c
    native_endpoint_rows = _endpoint_rows_c
    native_addr_find = _addr_find_c
    native_burst_starts = _burst_starts_c
    native_canary_scan = _canary_scan_c
    native_first_seen = _first_seen
    native_gather = _gather
    native_snis = _snis

_noticed = False


def _notice() -> None:
    global _noticed
    if not _noticed:
        _noticed = True
        print("testbed: native capture helpers not built (reinstall with a C compiler and "
              "the Python headers); reading captures in pure Python, slower", file=sys.stderr)


def _either(fast: T | None, reference: T) -> T:
    """`fast` when the native loops are built; else `reference`, said once."""
    if fast is not None:
        return fast
    _notice()
    return reference


def walks() -> tuple[Walk, Walk]:
    """(pcap walk, pcapng walk)."""
    return _either(native_walk, python_walk)


def gather() -> Gather:
    """The payload gather."""
    return _either(native_gather, python_gather)


def snis() -> Snis:
    """The ClientHello SNI walk."""
    return _either(native_snis, python_snis)


def first_seen() -> FirstSeen:
    """The first-seen filter."""
    return _either(native_first_seen, python_first_seen)
