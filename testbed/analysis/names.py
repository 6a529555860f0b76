"""Names for addresses: what the guests resolved (DNS), asked for in TLS (SNI) and in
HTTP (Host).

`NameScanner.feed` takes TCP/UDP payloads in capture order (`extract_names(pcap, guests)`
reads a capture with it: the reference for the one-pass scan, `consumers.NameConsumer`):
- DNS responses (UDP and single-segment TCP, source port 53): A/AAAA answers, with CNAME
  chains followed, so the queried name and every alias map to the final addresses; the
  variant is the guest the response went to;
- TLS ClientHellos (TCP payload starting a handshake record, also when split over a few
  consecutive segments of the same flow): the SNI maps to the destination address; the
  variant is the guest that sent it;
- plaintext HTTP requests: the Host header (when not an IP literal) maps to the
  destination address.
`names_from_flows(index, flows)` adds Host headers and SNIs from a mitmproxy flow file.
The payload parsers are in `payloads`.

Malformed payloads are ignored, never raised; capture damage becomes `index.warnings`.
Names are lower case without the trailing dot. Names seen with no guest involved are kept
without a variant.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from testbed._errors import AnalysisError

from .flows import FlowRecord, HttpRecord, flow_records, ip_text
from .payloads import (
    HTTP_FIRST,
    MAX_HELLO,
    MAX_SEGMENTS,
    client_hello_sni,
    dns_answers,
    handshake_message,
    host_name,
    http_host,
)
from .pcap import PcapReader

__all__ = [
    "SOURCES",
    "NameIndex",
    "NameScanner",
    "client_hello_sni",
    "dns_answers",
    "extract_names",
    "names_from_flows",
]

SOURCES = ("dns", "sni", "http-host")


def _canonical(address: str) -> str:
    try:
        return ipaddress.ip_address(address).compressed
    except ValueError as e:
        raise AnalysisError(f"not an IP address: {address!r}") from e


def _clean_name(name: str) -> str | None:
    """Lower case, no trailing dot; None unless printable ASCII without spaces."""
    name = name.strip().rstrip(".").lower()
    if not name or len(name) > 253 or not name.isascii() or not name.isprintable():
        return None
    if " " in name or "\\" in name:
        return None
    return name


class NameIndex(Mapping[str, frozenset[tuple[str, str]]]):
    """address -> {(name, source)}, with the variants behind each triple.

    `index[address]` is the set of (name, source) pairs; `names_for(address)` the sorted
    names; `variants_for(address, name)` which guests looked it up / sent it.
    `to_json()` / `from_json()` round-trip (sorted, stable output)."""

    def __init__(self) -> None:
        self._data: dict[str, dict[tuple[str, str], set[str]]] = {}
        self.warnings: list[str] = []

    # -- building --------------------------------------------------------------------
    def _add(self, address: str, name: str, source: str, variant: str | None) -> None:
        entry = self._data.setdefault(address, {})
        variants = entry.get((name, source))
        if variants is None:
            variants = entry[(name, source)] = set()
        if variant:
            variants.add(variant)

    def add(self, address: str, name: str, source: str, variant: str | None = None) -> bool:
        """Record that `name` stands for `address` (normalised); False when `name` is not
        a usable host name. `source` is one of `SOURCES`."""
        if source not in SOURCES:
            raise ValueError(f"unknown name source {source!r}; expected one of {SOURCES}")
        clean = _clean_name(name)
        if clean is None:
            return False
        self._add(_canonical(address), clean, source, variant)
        return True

    def merge(self, other: NameIndex) -> None:
        for address, entry in other._data.items():
            for (name, source), variants in entry.items():
                self._add(address, name, source, None)
                self._data[address][(name, source)].update(variants)
        self.warnings.extend(other.warnings)

    # -- Mapping ---------------------------------------------------------------------
    def __getitem__(self, address: str) -> frozenset[tuple[str, str]]:
        entry = self._data.get(address)
        if entry is None:
            try:
                entry = self._data.get(ipaddress.ip_address(address).compressed)
            except ValueError:
                entry = None
        if entry is None:
            raise KeyError(address)
        return frozenset(entry)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    # -- queries ---------------------------------------------------------------------
    def names_for(
        self, address: str, variant: str | None = None, sources: tuple[str, ...] = SOURCES
    ) -> list[str]:
        """Sorted names for `address` (from `sources`; only those `variant` saw, if given)."""
        try:
            entry = self._data.get(_canonical(address), {})
        except AnalysisError:
            return []
        return sorted(
            {
                name
                for (name, source), variants in entry.items()
                if source in sources and (variant is None or variant in variants)
            }
        )

    def variants_for(self, address: str, name: str, source: str | None = None) -> list[str]:
        """Sorted variants behind `name` for `address` (any source unless `source`)."""
        try:
            entry = self._data.get(_canonical(address), {})
        except AnalysisError:
            return []
        clean = _clean_name(name) or ""
        out: set[str] = set()
        for (n, s), variants in entry.items():
            if n == clean and (source is None or s == source):
                out |= variants
        return sorted(out)

    def addresses_for(self, name: str) -> list[str]:
        """Addresses `name` (any source) stands for, sorted by version and value."""
        clean = _clean_name(name)
        found = [a for a, entry in self._data.items() if any(n == clean for n, _ in entry)]
        return sorted(found, key=lambda a: (ipaddress.ip_address(a).version, a))

    # -- JSON ------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """`{"addresses": {address: [{"name", "source", "variants"}, ...]}, "warnings"}`."""
        addresses = {}
        for address in sorted(self._data, key=lambda a: (":" in a, a)):
            entry = self._data[address]
            addresses[address] = [
                {"name": n, "source": s, "variants": sorted(entry[(n, s)])}
                for n, s in sorted(entry)
            ]
        return {"addresses": addresses, "warnings": list(self.warnings)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NameIndex:
        index = cls()
        try:
            for address, items in data["addresses"].items():
                canonical = _canonical(address)
                for item in items:
                    name, source = str(item["name"]), str(item["source"])
                    if source not in SOURCES:
                        raise ValueError(f"unknown source {source!r}")
                    index._add(canonical, name, source, None)
                    index._data[canonical][(name, source)].update(
                        str(v) for v in item.get("variants", ())
                    )
            index.warnings = [str(w) for w in data.get("warnings", ())]
        except (KeyError, TypeError, ValueError, AttributeError, AnalysisError) as e:
            raise AnalysisError(f"name index is malformed: {e}") from e
        return index


# -- extraction -----------------------------------------------------------------------
def extract_names(
    pcap_path: str | os.PathLike[str],
    guests: Mapping[str, str],
    on_warning: Callable[[str], None] | None = None,
) -> NameIndex:
    """Build a `NameIndex` from one streaming pass over a capture (the scalar reference
    for `testbed.analysis.scan`).

    `guests` maps guest address -> variant. Raises `CaptureFormatError` when the file is
    not a capture; damage stops reading and is recorded on `index.warnings` (and passed to
    `on_warning`)."""
    names = NameScanner({_canonical_packed(a): v for a, v in guests.items()})
    reader = PcapReader(pcap_path, on_warning)
    feed = names.feed
    for _ts, src, dst, proto, sport, dport, payload, _flags in reader.iter_payloads():
        if payload:
            feed(src, dst, proto, sport, dport, payload)
    names.index.warnings.extend(reader.warnings)
    return names.index


class NameScanner:
    """Names from TCP/UDP payloads fed in capture order (see the module docstring).
    `pending(src, dst, sport, dport)` says whether a TCP flow is in the middle of a
    ClientHello (its next segments must be fed even when they look like nothing)."""

    def __init__(self, guest_of: Mapping[bytes, str]) -> None:
        self.index = NameIndex()
        self.get_guest = guest_of.get
        self.ntop_cache: dict[bytes, str] = {}
        # TLS reassembly: (src, dst, sport, dport) -> [bytes so far, segments]
        self.pending: dict[tuple[bytes, bytes, int, int], list[Any]] = {}
        self.dns_seen: set[tuple[bytes, str | None]] = set()
        self.added: set[tuple[bytes, str, str, str | None]] = set()

    def add(self, packed: bytes, name: str, source: str, variant: str | None) -> None:
        seen = (packed, name, source, variant)  # every connection repeats its SNI
        if seen in self.added:
            return
        if len(self.added) >= 1 << 16:
            self.added.clear()
        self.added.add(seen)
        clean = _clean_name(name)
        if clean is not None:
            s = self.ntop_cache.get(packed)
            if s is None:
                fam = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
                s = self.ntop_cache[packed] = socket.inet_ntop(fam, packed)
            self.index._add(s, clean, source, variant)

    def dns(self, msg: bytes, variant: str | None) -> None:
        key = (msg[2:], variant)  # responses repeat but for the id: take each once
        if key in self.dns_seen:
            return
        if len(self.dns_seen) >= 1 << 16:
            self.dns_seen.clear()
        self.dns_seen.add(key)
        for name, addr in dns_answers(msg):
            self.add(addr, name, "dns", variant)

    def feed(self, src: bytes, dst: bytes, proto: int, sport: int, dport: int,
             payload: bytes) -> None:
        """One non-empty payload."""
        if proto == 17:
            if sport == 53:
                self.dns(payload, self.get_guest(dst))
            return
        pending = self.pending
        if pending:
            key = (src, dst, sport, dport)
            st = pending.get(key)
            if st is not None:
                data = st[0] + payload
                hs = handshake_message(data)
                if hs is None and len(data) <= MAX_HELLO and st[1] < MAX_SEGMENTS:
                    st[0] = data
                    st[1] += 1
                    return
                del pending[key]
                if hs:
                    sni = client_hello_sni(hs)
                    if sni:
                        self.add(dst, sni, "sni", self.get_guest(src))
                return
        first = payload[0]
        if first == 0x16:
            if len(payload) >= 6 and (payload[1] != 3 or payload[5] != 1):
                return
            hs = handshake_message(payload)
            if hs is None:
                if len(pending) >= 4096:  # bound memory: forget the oldest
                    del pending[next(iter(pending))]
                pending[(src, dst, sport, dport)] = [payload, 1]
            elif hs:
                sni = client_hello_sni(hs)
                if sni:
                    self.add(dst, sni, "sni", self.get_guest(src))
        elif sport == 53:  # DNS over TCP, whole message in one segment
            if len(payload) > 14 and (payload[0] << 8 | payload[1]) == len(payload) - 2:
                self.dns(payload[2:], self.get_guest(dst))
        elif first in HTTP_FIRST:
            host = http_host(payload)
            if host:
                self.add(dst, host, "http-host", self.get_guest(src))


def _canonical_packed(address: str) -> bytes:
    try:
        return ipaddress.ip_address(address).packed
    except ValueError as e:
        raise AnalysisError(f"not an IP address: {address!r}") from e


def names_from_flows(
    index: NameIndex,
    flows: str | os.PathLike[str] | Iterable[FlowRecord],
    guests: Mapping[str, str] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> NameIndex:
    """Add HTTP Host headers ("http-host") and client SNIs ("sni") from a mitmproxy flow
    file to `index` (and return it), keyed by the flow's server address (the original
    destination in transparent mode; flows whose server is not an IP address are skipped).
    The variant is `guests[client address]` when given. Flow-file errors as in
    `flows.read_flows` (raise, unless `on_warning` is given). `flows` is the file, or its
    records already being read."""
    guests_c: dict[str, str] = {}
    for a, v in (guests or {}).items():
        guests_c[_canonical(a)] = v
    for rec in flow_records(flows, on_warning):
        server = ip_text(rec.server[0])
        if server is None:
            continue
        variant = guests_c.get(ip_text(rec.client[0]) or "")
        if isinstance(rec, HttpRecord) and rec.host:
            host = host_name(rec.host)
            if host:
                index.add(server, host, "http-host", variant)
        if rec.sni and host_name(rec.sni):
            index.add(server, rec.sni, "sni", variant)
    return index
