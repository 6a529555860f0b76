"""The simulated internet's data file (``scenarios/lab/internet-*.yaml``), loaded.

Each server has a lab address (documentation blocks only), a DNS name, a country, and the
real address it stands for. The lab's resolver answers for the names, the internet namespace
answers on the addresses, and ``write_geo_database`` turns the map into a MaxMind-format
database so a lab run is geolocated through geoip2 exactly as a real run.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from testbed._errors import ScenarioError

LAB_BLOCKS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
                                      "2001:db8::/32")
)


@dataclass(frozen=True)
class Server:
    address: str
    name: str
    country: str
    stands_for: str
    builds: int
    contacted_by: tuple[str, ...]
    proto: str
    role: str = ""


@dataclass(frozen=True)
class SpecialAddress:
    address: str
    kind: str
    contacted_by: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class InternetMap:
    name: str
    path: Path
    countries: dict[str, str]
    servers: tuple[Server, ...]
    special: tuple[SpecialAddress, ...]
    keywords: dict[str, list[str]] = field(default_factory=dict)
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def __iter__(self) -> Iterator[Server]:
        return iter(self.servers)

    def by_address(self) -> dict[str, Server]:
        return {s.address: s for s in self.servers}

    def stands_for(self) -> dict[str, str]:
        return {s.address: s.stands_for for s in self.servers}

    def country_name(self, code: str) -> str:
        return self.countries.get(code, code)


def load_internet(path: Path) -> InternetMap:
    """Load and check a data file; every problem is a ScenarioError naming the file."""
    try:
        # libyaml's safe loader when PyYAML has it: the same documents, ~10x faster
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, yaml.YAMLError) as e:
        raise ScenarioError(f"{path}: cannot read the internet data file: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("servers"), list):
        raise ScenarioError(f"{path}: an internet data file needs a `servers` list")
    countries = {str(k): str(v) for k, v in (data.get("countries") or {}).items()}
    servers, seen = [], set()
    for i, row in enumerate(data["servers"]):
        where = f"{path}: servers[{i}]"
        try:
            s = Server(
                address=str(row["address"]), name=str(row["name"]), country=str(row["country"]),
                stands_for=str(row["stands_for"]), builds=int(row["builds"]),
                contacted_by=tuple(str(b) for b in row["contacted_by"]),
                proto=str(row.get("proto", "tls")), role=str(row.get("role", "")),
            )
            addr = ipaddress.ip_address(s.address)
        except (KeyError, TypeError, ValueError) as e:
            raise ScenarioError(f"{where}: bad server entry: {e}") from e
        if not any(addr in block for block in LAB_BLOCKS):
            raise ScenarioError(f"{where}: {s.address} is not in a documentation block; "
                                "the lab never answers on real public addresses")
        if s.address in seen:
            raise ScenarioError(f"{where}: duplicate address {s.address}")
        seen.add(s.address)
        servers.append(s)
    special = tuple(
        SpecialAddress(address=str(r["address"]), kind=str(r["kind"]),
                       contacted_by=tuple(str(b) for b in r.get("contacted_by", [])),
                       note=str(r.get("note", "")))
        for r in data.get("special") or []
    )
    keywords = {str(k): [str(w) for w in v or []]
                for k, v in (data.get("keywords") or {}).items()}
    tls = data.get("tls") or {}
    cert = (path.parent / str(tls["cert"])).resolve() if "cert" in tls else None
    key = (path.parent / str(tls["key"])).resolve() if "key" in tls else None
    return InternetMap(name=str(data.get("internet", path.stem)), path=path,
                       countries=countries, servers=tuple(servers), special=special,
                       keywords=keywords, tls_cert=cert, tls_key=key)
