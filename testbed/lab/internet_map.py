"""The simulated internet's data file (``scenarios/lab/internet-*.yaml``), loaded.

Each server has a lab address (documentation blocks only), a DNS name, a country, and the
real address it stands for. The lab's resolver answers for the names, the internet namespace
answers on the addresses, and ``write_geo_database`` turns the map into a MaxMind-format
database so a lab run is geolocated through geoip2 exactly as a real run.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from testbed.scenario.data_schema import LAB_BLOCKS as LAB_BLOCKS  # defined with the schema

#: the parser for a file already checked (safe, as the checking loader; in C where built)
_CHECKED_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Daemon:
    """Real server software run on a row's address (`testbed.lab.daemons` runs it)."""

    command: tuple[str, ...]
    files: tuple[Path, ...]  # resolved, inside the scenario's tree (validated)
    ready: int
    ready_seconds: float = 30.0
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Server:
    address: str
    name: str
    country: str
    stands_for: str | None  # None: a lab-only site (a download site) stands for no address
    builds: int
    contacted_by: tuple[str, ...]
    proto: str
    role: str = ""
    daemon: Daemon | None = None
    exit: Path | None = None  # a lab VPN exit: its own WireGuard config (testbed.lab.exits)
    redirects: dict[str, str] = field(default_factory=dict)  # egress country -> host

    @property
    def names(self) -> tuple[str, ...]:
        """Every DNS name of the row: its name, then its daemon's other names."""
        more = self.daemon.names if self.daemon is not None else ()
        return (self.name, *(n for n in more if n.lower() != self.name.lower()))


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

    def exits(self) -> tuple[Server, ...]:
        """The rows that are lab VPN exits."""
        return tuple(s for s in self.servers if s.exit is not None)

    def daemons(self) -> tuple[Server, ...]:
        """The rows that run real server software."""
        return tuple(s for s in self.servers if s.daemon is not None)

    def by_address(self) -> dict[str, Server]:
        return {s.address: s for s in self.servers}

    def stands_for(self) -> dict[str, str]:
        return {s.address: s.stands_for for s in self.servers if s.stands_for is not None}

    def by_name(self, name: str) -> Server | None:
        """The row answering for DNS name ``name`` (case and a final dot ignored)."""
        key = name.lower().rstrip(".")
        return next((s for s in self.servers if key in (n.lower() for n in s.names)), None)

    def egress_country(self, address: str) -> str | None:
        """The country the map places a client's egress address in (the apparent country of
        a request's source address), None when the map does not place it."""
        row = self.by_address().get(address)
        return row.country if row is not None else None

    def country_name(self, code: str) -> str:
        return self.countries.get(code, code)


def load_internet(path: Path, validated: str | None = None) -> InternetMap:
    """Load a data file, checked as `testbed validate` checks it (schema, addresses in the
    documentation blocks, unique addresses and names); a problem is a ScenarioError with one
    ``FILE:LINE: ...`` line each. ``validated``: the sha256 of the file as it was checked
    before (a run's copy, checked when the run started, `Manifest.internet`); a file with
    that digest is read without checking it again (no validator, libyaml's parser: ~60 ms
    less for `testbed analyze`), any other is checked."""
    if validated is not None:
        raw = path.read_bytes()
        if hashlib.sha256(raw).hexdigest() == validated:
            return _from_data(path, yaml.load(raw, Loader=_CHECKED_LOADER))
    from testbed.scenario.load import load_data

    return _from_data(path, load_data(path, "internet"))


def _from_data(path: Path, data: dict[Any, Any]) -> InternetMap:
    """The map of a checked file's content."""
    countries = {str(k): str(v) for k, v in (data.get("countries") or {}).items()}
    servers = tuple(
        Server(address=str(ipaddress.ip_address(r["address"])), name=str(r["name"]),
               country=str(r["country"]),
               stands_for=str(r["stands_for"]) if r.get("stands_for") is not None else None,
               builds=int(r["builds"]), contacted_by=tuple(str(b) for b in r["contacted_by"]),
               proto=str(r.get("proto", "tls")), role=str(r.get("role", "")),
               daemon=_daemon(path, r.get("daemon")),
               exit=(path.parent / str(r["exit"]["wireguard"])).resolve()
               if isinstance(r.get("exit"), dict) else None,
               redirects={str(k): str(v) for k, v in (r.get("redirects") or {}).items()})
        for r in data["servers"]
    )
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
                       countries=countries, servers=servers, special=special,
                       keywords=keywords, tls_cert=cert, tls_key=key)


def _daemon(path: Path, raw: Any) -> Daemon | None:
    if not isinstance(raw, dict):
        return None
    return Daemon(command=tuple(str(a) for a in raw["command"]),
                  files=tuple((path.parent / str(f)).resolve() for f in raw.get("files", [])),
                  ready=int(raw["ready"]), ready_seconds=float(raw.get("ready_seconds", 30)),
                  names=tuple(str(n) for n in raw.get("names", [])))
