"""Chat path evidence (DESIGN.md, "Chat path evidence"), strongest first:

1. the run's canary string in decrypted content (`canary_in_flows`, mitmproxy) or in
   plaintext payload (`canary_in_pcap`) on a flow from a guest to endpoint E: "strong";
2. timing (`bursts` + `timing_evidence`): a burst to E that starts within a window after
   the chat event and has no counterpart in any control window: "weak".

The canary is searched in several encodings (UTF-8, JSON \\u-escaped, percent/form
encoded, UTF-16-LE; see `canary_forms`); the evidence detail names the ones found.
Compressed or encrypted payloads hide it from the pcap search: absence is not evidence.
`canary_in_pcap` and `bursts` read the capture themselves: they are the references the
one-pass scan (`scan.scan_capture`, `consumers`) is tested against.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import os
import socket
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from testbed._errors import AnalysisError
from testbed.run.evidence import ChatEvidence

from .flows import FlowRecord, HttpRecord, flow_records, ip_text
from .pcap import PcapReader, proto_name

__all__ = [
    "KINDS",
    "BurstKey",
    "bursts",
    "canary_forms",
    "canary_in_flows",
    "canary_in_pcap",
    "named_bursts",
    "plaintext_hits",
    "timing_evidence",
]

KINDS = ("canary-decrypted", "canary-plaintext", "timing")

BurstKey = tuple[str, str, str, int]  # (variant, remote address, proto, remote port)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _packed_guests(guests: Mapping[str, str]) -> dict[bytes, str]:
    out = {}
    for a, v in guests.items():
        try:
            out[ipaddress.ip_address(a).packed] = v
        except ValueError as e:
            raise AnalysisError(f"not an IP address: {a!r}") from e
    return out


def _ntop(packed: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed)


def canary_forms(canary: str) -> list[tuple[str, bytes]]:
    """(label, bytes) encodings of `canary` searched for, distinct, UTF-8 first."""
    if not canary:
        raise AnalysisError("the canary string is empty")
    forms: dict[bytes, str] = {}
    for label, data in (
        ("utf-8", canary.encode("utf-8")),
        ("json-escaped", json.dumps(canary)[1:-1].encode("ascii")),
        ("percent-encoded", urllib.parse.quote(canary, safe="").encode("ascii")),
        ("form-encoded", urllib.parse.quote_plus(canary).encode("ascii")),
        ("utf-16-le", canary.encode("utf-16-le")),
    ):
        forms.setdefault(data, label)
    return [(label, data) for data, label in forms.items()]


def canary_in_pcap(
    pcap_path: str | os.PathLike[str],
    guests: Mapping[str, str],
    canary: str,
    on_warning: Callable[[str], None] | None = None,
) -> list[ChatEvidence]:
    """Canary hits in guest-originated TCP/UDP payloads, one `ChatEvidence`
    ("canary-plaintext", "strong") per flow (variant, remote address, proto, remote port,
    guest port), with the first time seen and the hit count in the detail: one item per
    connection, so that messages sharing the run's canary stay apart in time. A canary split across
    consecutive packets of one flow direction is found (the last bytes of each are kept).
    Capture damage stops reading and goes to `on_warning`; not a capture:
    `CaptureFormatError`."""
    forms = canary_forms(canary)
    keep = max(len(b) for _, b in forms) - 1
    guest_of = _packed_guests(guests)
    get_guest = guest_of.get
    tails: dict[tuple[bytes, bytes, int, int, int], bytes] = {}
    # (variant, remote, proto, port, guest port) -> [first ts, hits, guest, labels]
    found: dict[tuple[str, bytes, int, int, int], list[Any]] = {}
    reader = PcapReader(pcap_path, on_warning)
    for ts, src, dst, proto, sport, dport, payload, _flags in reader.iter_payloads():
        if not payload:
            continue
        variant = get_guest(src)
        if variant is None:
            continue
        fkey = (src, dst, proto, sport, dport)
        tail = tails.get(fkey, b"")
        hits = 0
        labels: list[str] = []
        for label, b in forms:
            c = payload.count(b)
            if tail:  # matches that start in the tail and end in this payload
                c += (tail + payload[: len(b) - 1]).count(b, max(0, len(tail) - len(b) + 1))
            if c:
                hits += c
                labels.append(label)
        if keep:
            tails[fkey] = payload[-keep:] if len(payload) >= keep else (tail + payload)[-keep:]
        if hits:
            key = (variant, dst, proto, dport, sport)
            rec = found.get(key)
            if rec is None:
                found[key] = [ts, hits, src, set(labels)]
            else:
                rec[0] = min(rec[0], ts)
                rec[1] += hits
                rec[3].update(labels)
    return plaintext_hits(found, canary)


# (variant, remote, proto, port, guest port) -> [first ts, hits, guest, labels]
PlaintextHits = dict[tuple[str, bytes, int, int, int], list[Any]]


def plaintext_hits(found: PlaintextHits, canary: str) -> list[ChatEvidence]:
    """The "canary-plaintext" evidence of canary hits counted per guest flow."""
    out = []
    for (variant, remote, proto, port, _sport), (first, hits, guest, labels) in found.items():
        address, pname = _ntop(remote), proto_name(proto)
        where = f"plaintext {pname.upper()} payload from {variant} ({_ntop(guest)}) to {address}"
        out.append(_canary_hit("canary-plaintext", variant, address, port, pname, first,
                               f"canary {canary!r} found {hits} time(s) "
                               f"({', '.join(sorted(labels))}) in {where} port {port}"))
    return sorted(out, key=_order)


def _canary_hit(kind: str, variant: str, address: str, port: int, proto: str, first: float,
                detail: str) -> ChatEvidence:
    return ChatEvidence(kind=kind, variant=variant, address=address, port=port, proto=proto,
                    time=first, strength="strong", detail=f"{detail}, first at {_when(first)}")


def _order(e: ChatEvidence) -> tuple[float, str, str, int]:
    return (e.time, e.variant, e.address, e.port)


def _count(forms: Sequence[tuple[str, bytes]], data: bytes, labels: set[str]) -> int:
    n = 0
    for label, b in forms:
        c = data.count(b)
        if c:
            n += c
            labels.add(label)
    return n


def _headers_bytes(headers: Iterable[tuple[str, str]]) -> bytes:
    return "\r\n".join(f"{k}: {v}" for k, v in headers).encode("utf-8", "surrogateescape")


def canary_in_flows(
    flows: str | os.PathLike[str] | Iterable[FlowRecord],
    guests: Mapping[str, str],
    canary: str,
    on_warning: Callable[[str], None] | None = None,
) -> list[ChatEvidence]:
    """Canary hits in mitmproxy flows from a guest (client address in `guests`): HTTP
    URL, headers and bodies (request and response), WebSocket messages, TCP/UDP
    messages. One `ChatEvidence` ("canary-decrypted", "strong") per flow, and per message of
    a TCP/UDP stream (which may carry a whole chat session), so that messages sharing the
    run's canary stay apart in time; the server address is the original
    destination (transparent mode). Flow-file errors as in `flows.read_flows` (raise, unless
    `on_warning`). `flows` is the file, or its records already being read."""
    forms = canary_forms(canary)
    guests_c = {_ntop(packed): v for packed, v in _packed_guests(guests).items()}
    # (variant, server, proto, port, flow, message of a stream) -> [first ts, hits, places,
    # labels, flows]
    found: dict[tuple[str, str, str, int, str, int], list[Any]] = {}
    for rec in flow_records(flows, on_warning):
        variant = guests_c.get(ip_text(rec.client[0]) or "")
        if variant is None:
            continue
        server = ip_text(rec.server[0]) or rec.server[0]
        parts: list[tuple[str, bytes, float]] = []
        if isinstance(rec, HttpRecord):
            t = rec.timestamp_start
            parts += [
                ("URL", rec.url.encode("utf-8", "surrogateescape"), t),
                ("request headers", _headers_bytes(rec.request_headers), t),
                ("request body", rec.request_body, t),
                ("response headers", _headers_bytes(rec.response_headers), t),
                ("response body", rec.response_body, t),
            ]
            kind = "WebSocket"
            proto = "tcp"
        else:
            kind = rec.proto.upper()
            proto = rec.proto
        for m in rec.messages:
            side = "client" if m.from_client else "server"
            parts.append((f"{kind} message from {side}", m.content, m.timestamp))
        # one item per flow, so that messages sharing the run's canary stay apart in time;
        # a TCP/UDP stream lives as long as its app (an XMPP or MQTT session carries every
        # message): there, one item per message that holds the canary
        stream = not isinstance(rec, HttpRecord)
        for i, (place, data, t) in enumerate(parts):
            labels: set[str] = set()
            c = _count(forms, data, labels)
            if not c:
                continue
            key = (variant, server, proto, rec.server[1], rec.id, i if stream else 0)
            entry = found.get(key)
            if entry is None:
                found[key] = [t, c, [place], labels, 1]
            else:
                entry[0] = min(entry[0], t)
                entry[1] += c
                entry[2].extend([place] if place not in entry[2] else [])
                entry[3].update(labels)
    out = []
    for (variant, server, proto, port, _id, _i), (first, hits, places, labels, nflows) in \
            found.items():
        out.append(_canary_hit("canary-decrypted", variant, server, port, proto, first,
                               f"canary {canary!r} found {hits} time(s) "
                               f"({', '.join(sorted(labels))}) in {nflows} decrypted flow(s) "
                               f"from {variant} to {server} port {port} ({', '.join(places)})"))
    return sorted(out, key=_order)


def bursts(
    pcap_path: str | os.PathLike[str],
    guests: Mapping[str, str],
    idle_gap: float = 1.0,
    on_warning: Callable[[str], None] | None = None,
) -> dict[BurstKey, list[float]]:
    """Start times (sorted) of bursts of guest-originated TCP/UDP packets per
    (variant, remote address, proto, remote port). A burst starts at the first packet to
    the endpoint, at a TCP SYN (without ACK), or after more than `idle_gap` seconds with no
    packet from the guest to it. Capture damage goes to `on_warning`."""
    guest_of = _packed_guests(guests)
    get_guest = guest_of.get
    last: dict[tuple[str, bytes, int, int], float] = {}
    starts: dict[tuple[str, bytes, int, int], list[float]] = {}
    reader = PcapReader(pcap_path, on_warning)
    for ts, src, dst, proto, _sport, dport, _payload, flags in reader.iter_payloads():
        variant = get_guest(src)
        if variant is None:
            continue
        key = (variant, dst, proto, dport)
        prev = last.get(key)
        if prev is None:
            starts[key] = [ts]
            last[key] = ts
            continue
        if ts - prev > idle_gap or (flags & 0x12 == 0x02 and proto == 6):
            starts[key].append(ts)
        if ts > prev:
            last[key] = ts
    return named_bursts(starts)


def named_bursts(
    starts: Mapping[tuple[str, bytes, int, int], list[float]],
) -> dict[BurstKey, list[float]]:
    """Burst starts keyed by (variant, packed remote, proto number, port), as `BurstKey`s."""
    names: dict[bytes, str] = {}
    out: dict[BurstKey, list[float]] = {}
    for (variant, remote, proto, port), times in starts.items():
        name = names.get(remote)
        if name is None:
            name = names[remote] = _ntop(remote)
        out[(variant, name, proto_name(proto), port)] = sorted(times)
    return out


def timing_evidence(
    bursts: Mapping[BurstKey, Sequence[float]],
    variant: str,
    event_time: float,
    window: float = 3.0,
    control_times: Sequence[float] = (),
) -> list[ChatEvidence]:
    """Endpoints of `variant` with a burst starting within [event_time,
    event_time + window] and none within any control window [c, c + window]
    (`control_times`: a neutral message, an idle period). Periodic traffic (keep-alives)
    also fires in the control windows and so is not evidence. With no control windows,
    every burst in the event window is reported (and the detail says so). Each is
    "timing" / "weak" evidence, sorted by burst start."""
    out = []
    for (v, address, proto, port), times in bursts.items():
        if v != variant:
            continue
        ordered = sorted(times)
        i = bisect.bisect_left(ordered, event_time)
        if i >= len(ordered) or ordered[i] > event_time + window:
            continue
        start = ordered[i]
        if any(_any_in(ordered, c, c + window) for c in control_times):
            continue
        if control_times:
            control = f"none in {len(control_times)} control window(s) of the same length"
        else:
            control = "no control window was given"
        out.append(
            ChatEvidence(
                kind="timing",
                variant=variant,
                address=address,
                port=port,
                proto=proto,
                time=start,
                strength="weak",
                detail=(
                    f"a {proto.upper()} burst from {variant} to {address} port {port} started "
                    f"{start - event_time:.2f} s after the event at {_when(event_time)} "
                    f"(window {window:g} s); {control}"
                ),
            )
        )
    out.sort(key=lambda e: (e.time, e.address, e.port))
    return out


def _any_in(ordered: Sequence[float], lo: float, hi: float) -> bool:
    i = bisect.bisect_left(ordered, lo)
    return i < len(ordered) and ordered[i] <= hi
