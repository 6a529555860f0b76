"""``testbed geo lookup ADDRESS...``: every database's answer for each address.

Special-purpose addresses (multicast, private, documentation, ...) are classified and
never geolocated. Exit 2, with one line, for an address that is not an IP address, a
missing or unreadable database, or no database at all.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from testbed._errors import AnalysisError
from testbed.analysis.bundled import BUNDLED, bundled_databases
from testbed.analysis.classify import classify
from testbed.analysis.geo import Consensus, Geo, Placement

__all__ = ["AddressResult", "format_results", "lookup", "main"]


@dataclass(frozen=True)
class AddressResult:
    """One address: its special-purpose kind, or one placement per database."""

    address: str
    special: str | None
    placements: tuple[Placement, ...]
    consensus: Consensus | None

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "special": self.special,
            "placements": [
                {
                    "database": p.database,
                    "known": p.known,
                    "iso_code": p.iso_code,
                    "country_name": p.country_name,
                    "city": p.city,
                    "asn": p.asn,
                    "organization": p.organization,
                    "network": p.network,
                }
                for p in self.placements
            ],
            "consensus": None
            if self.consensus is None
            else {
                "iso_code": self.consensus.iso_code,
                "disagree": self.consensus.disagree,
                "countries": self.consensus.countries,
            },
        }


def _normalise(addresses: Sequence[str]) -> list[str]:
    out = []
    for a in addresses:
        try:
            out.append(str(ipaddress.ip_address(a.strip())))
        except ValueError as e:
            raise AnalysisError(f"not an IP address: {a!r}") from e
    return out


def lookup(addresses: Sequence[str], geo: Geo) -> list[AddressResult]:
    """Classify each address; place the global ones with every database of `geo`.
    Raises `AnalysisError` (before any lookup) when one is not an IP address."""
    results = []
    for address in _normalise(addresses):
        kind = classify(address)
        if kind is not None:
            results.append(AddressResult(address, kind, (), None))
            continue
        placements = tuple(geo.place_all(address))
        results.append(AddressResult(address, None, placements, Consensus.of(placements)))
    return results


def _country(p: Placement) -> str:
    if not p.known:
        return "(not in database)"
    if p.iso_code is None:
        return "-"
    return f"{p.iso_code} {p.country_name}" if p.country_name else p.iso_code


def _as(p: Placement) -> str:
    if p.asn is None and p.organization is None:
        return "-"
    if p.asn is None:
        return str(p.organization)
    return f"AS{p.asn} {p.organization}" if p.organization else f"AS{p.asn}"


def format_results(results: Sequence[AddressResult]) -> str:
    """A table: one line per (address, database); special addresses on one line;
    a '!' line under each address the databases disagree on."""
    header = ("ADDRESS", "COUNTRY", "CITY", "AS", "NETWORK", "DATABASE")
    rows: list[tuple[str, ...] | str] = []
    for r in results:
        if r.special is not None:
            rows.append(f"{r.address}  [{r.special}] special-purpose address, not geolocated")
            continue
        for i, p in enumerate(r.placements):
            rows.append(
                (
                    r.address if i == 0 else "",
                    _country(p),
                    p.city or "-",
                    _as(p),
                    p.network or "-",
                    p.database or "-",
                )
            )
        if r.consensus is not None and r.consensus.disagree:
            votes = "; ".join(f"{code} per {label}" for label, code in r.consensus.votes)
            rows.append(f"  ! databases disagree on {r.address}: {votes}")
    table = [row for row in rows if isinstance(row, tuple)]
    widths = [max(len(c[i]) for c in [header, *table]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(header)]
    out += [line(row) if isinstance(row, tuple) else row for row in rows]
    return "\n".join(out)


def _footer(geo: Geo, results: Sequence[AddressResult]) -> str:
    lines = []
    disagreements = sum(1 for r in results if r.consensus is not None and r.consensus.disagree)
    if disagreements:
        lines.append(f"\n{disagreements} address(es) on which the databases disagree (!)")
    lines.append("\nDatabases (first is primary):")
    for db in geo.databases:
        lines.append(f"  {db.label}  {db.database_type}  sha256 {db.sha256[:16]}…  {db.path}")
    attributions = sorted({db.attribution for db in geo.databases if db.attribution})
    lines += [f"  {a}" for a in attributions]
    return "\n".join(lines)


def main(
    addresses: Sequence[str],
    geoip: Sequence[Path] | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print every database's answer for `addresses`; return the exit status
    (0, or 2 after one `testbed: ...` line for a bad address or database)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        databases = list(geoip) if geoip else bundled_databases()
        _normalise(addresses)
        if not databases:
            wanted = " ".join(b.distribution for b in BUNDLED)
            raise AnalysisError(
                f"no GeoIP database: install the bundled ones ({wanted}) or use --geoip FILE"
            )
        for path in databases:
            if not Path(path).is_file():
                raise AnalysisError(f"{path}: no such GeoIP database")
        with Geo(databases) as geo:
            results = lookup(addresses, geo)
            if as_json:
                doc = {
                    "databases": geo.provenance(),
                    "c_extension": geo.c_extension,
                    "results": [r.to_json() for r in results],
                }
                print(json.dumps(doc, indent=1, ensure_ascii=False), file=out)
            else:
                print(format_results(results), file=out)
                print(_footer(geo, results), file=out)
            if not geo.c_extension:
                print("testbed: note: maxminddb's C extension is not in use (slow reader)",
                      file=err)
    except AnalysisError as e:
        print(f"testbed: geo lookup: {e}", file=err)
        return 2
    return 0


def run(args: argparse.Namespace) -> int:
    """CLI glue: `args.addresses`, `args.geoip`, `args.json`."""
    return main(args.addresses, args.geoip, args.json)
