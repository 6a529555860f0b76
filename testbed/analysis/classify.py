"""Special-purpose address classification (IANA special-purpose registries).

`classify(address)` returns the kind of a special-purpose address, or None for an
address that may be geolocated (global unicast). The tables below follow the IANA
IPv4/IPv6 Special-Purpose Address Registries (RFC 6890 and updates), the multicast
registries, and the IPv6 address-space registry (only 2000::/3 is global unicast).
Blocks the registries mark "globally reachable" (e.g. 192.0.0.9/32, 2001:4:112::/48,
64:ff9b::/96) return None. `ipaddress.is_global` is not used: it calls multicast global.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from functools import lru_cache

from testbed._errors import AnalysisError

__all__ = ["KINDS", "LOCAL_KINDS", "classify", "is_special"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Most specific first; a None kind marks a globally reachable hole in a larger block.
_V4: list[tuple[str, str | None]] = [
    ("0.0.0.0/32", "unspecified"),
    ("0.0.0.0/8", "this-network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.9/32", None),  # PCP anycast
    ("192.0.0.10/32", None),  # TURN anycast
    ("192.0.0.0/24", "ietf-protocol"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),  # deprecated 6to4 relay anycast
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
]

_V6: list[tuple[str, str | None]] = [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "ipv4-mapped"),
    ("64:ff9b::/96", None),  # well-known NAT64 prefix, globally reachable
    ("64:ff9b:1::/48", "translation"),
    ("100::/64", "discard"),
    ("2001:1::1/128", None),  # PCP anycast
    ("2001:1::2/128", None),  # TURN anycast
    ("2001:3::/32", None),  # AMT
    ("2001:4:112::/48", None),  # AS112-v6
    ("2001:20::/28", None),  # ORCHIDv2
    ("2001::/32", "teredo"),
    ("2001:2::/48", "benchmarking"),
    ("2001:db8::/32", "documentation"),
    ("2001::/23", "ietf-protocol"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment-routing"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
    ("2000::/3", None),  # global unicast
    ("::/0", "reserved"),  # everything else is unassigned/reserved address space
]

KINDS: frozenset[str] = frozenset(k for _, k in (*_V4, *_V6) if k is not None)
#: the kinds whose traffic stays on the local network or goes nowhere: they are in no country,
#: and need not be. Every other special kind (documentation outside the lab's map, reserved,
#: shared, benchmarking, translation, ...) may stand for a server anywhere: an endpoint there is
#: one nobody could place.
LOCAL_KINDS: frozenset[str] = frozenset({
    "unspecified", "this-network", "private", "loopback", "link-local", "multicast",
    "broadcast", "unique-local", "site-local", "discard"})


def _compile(table: list[tuple[str, str | None]]) -> tuple[tuple[int, int, str | None], ...]:
    out = []
    for net, kind in table:
        n = ipaddress.ip_network(net)
        out.append((int(n.network_address), int(n.netmask), kind))
    return tuple(out)


_V4_TABLE = _compile(_V4)
_V6_TABLE = _compile(_V6)


@lru_cache(maxsize=65536)
def _kind(address: str) -> tuple[str | None, ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as e:
        raise AnalysisError(f"not an IP address: {address!r}") from e
    value = int(ip)
    for net, mask, kind in _V4_TABLE if ip.version == 4 else _V6_TABLE:
        if value & mask == net:
            return kind, ip
    return None, ip


def classify(address: str, lab_networks: Collection[IPNetwork] = ()) -> str | None:
    """The special-purpose kind of `address` ("multicast", "private", "shared",
    "loopback", "link-local", "documentation", "unspecified", "broadcast", "reserved",
    "benchmarking", "this-network", "unique-local", "ipv4-mapped", "ietf-protocol",
    "teredo", "translation", "discard", "site-local", "segment-routing"), or None for a
    global unicast address that may be geolocated.

    An address inside one of `lab_networks` (the lab's simulated internet, which lives
    on documentation blocks) is treated as global and returns None.
    Raises `AnalysisError` for a string that is not an IP address.
    """
    kind, ip = _kind(address)
    if kind is not None and lab_networks:
        for net in lab_networks:
            if ip.version == net.version and ip in net:
                return None
    return kind


def is_special(address: str, lab_networks: Collection[IPNetwork] = ()) -> bool:
    """True when `address` must never be geolocated."""
    return classify(address, lab_networks) is not None
