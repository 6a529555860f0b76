"""Places an expectation names, and whether an endpoint is in one.

A place is a mapping; every key it has must hold: ``country`` (ISO code, the primary
database's placement), ``asn`` (any database's), ``organization`` (a case-insensitive part of
any database's organisation name), ``network`` (CIDR the address is in), ``host`` (a glob that a
name the endpoint was reached by matches). Special-purpose addresses are in no place.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Mapping
from typing import Any

from testbed.run import Placement


def describe(place: Mapping[str, Any]) -> str:
    """``CN``, ``AS4134``, ``organization 'China Telecom'``, ``*.cn``, ``203.0.113.0/24``."""
    parts = []
    for key, value in place.items():
        if key == "country":
            parts.append(str(value))
        elif key == "asn":
            parts.append(f"AS{value}")
        elif key == "organization":
            parts.append(f"organization {value!r}")
        else:
            parts.append(str(value))
    return " and ".join(parts) or "anywhere"


def contains(place: Mapping[str, Any], address: str, info: Placement) -> bool:
    if info.special or not place:
        return False
    views = info.views
    for key, value in place.items():
        if key == "country" and info.country != value:
            return False
        if key == "asn" and value not in {info.asn, *(v.asn for v in views)}:
            return False
        if key == "organization":
            orgs = [info.organization, *(v.organization for v in views)]
            if not any(o and str(value).casefold() in str(o).casefold() for o in orgs):
                return False
        if key == "network":
            try:
                if ipaddress.ip_address(address) not in ipaddress.ip_network(value, strict=False):
                    return False
            except ValueError:
                return False
        if key == "host" and not any(fnmatch.fnmatch(n, str(value)) for n in info.names):
            return False
    return True


def contains_any(places: list[dict[str, Any]], address: str, info: Placement) -> bool:
    return any(contains(p, address, info) for p in places)
