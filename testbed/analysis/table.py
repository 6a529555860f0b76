"""The seed-style table: one row per remote address, which variants contacted it.

Columns: address, country, country_name, stands_for, names, asn, organization, databases
(what every database says, "!" first when they disagree), then one mark column per variant
("x" when that variant contacted the address). `country` is the ISO code for a placed
address, the special kind in brackets ("[multicast]") for a special-purpose address
(never placed, never given a country), and "[unknown]" when no database knows it.
Rows sort like the seed article: by country name, then address numerically; special
and unknown rows come last (by kind, then address).
"""

from __future__ import annotations

import csv
import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .endpoints import EndpointReport
from .geo import Placement

__all__ = ["UNKNOWN", "Row", "format_table", "seed_table", "write_csv"]

UNKNOWN = "[unknown]"
FIXED_COLUMNS = ("address", "country", "country_name", "stands_for", "names", "asn",
                 "organization", "databases")
CONSOLE_COLUMNS = ("address", "country", "stands_for", "name", "databases disagree")


@dataclass
class Row:
    address: str
    country: str
    country_name: str
    stands_for: str
    marks: dict[str, str] = field(default_factory=dict)
    special: str | None = None  # the special-purpose kind, if any
    names: list[str] = field(default_factory=list)
    asn: str = ""
    organization: str = ""
    views: list[str] = field(default_factory=list)  # "CN (lab-seed-2013.mmdb 2026-11-26)", ...
    disagree: str = ""  # "IE GB" when the databases disagree

    def cells(self, variants: Sequence[str]) -> list[str]:
        databases = "; ".join(self.views)
        return [
            self.address,
            self.country,
            self.country_name,
            self.stands_for,
            " ".join(self.names),
            self.asn,
            self.organization,
            f"! {databases}" if self.disagree else databases,
            *(self.marks.get(v, "") for v in variants),
        ]

    def console_cells(self, variants: Sequence[str]) -> list[str]:
        name = self.names[0] + (f" +{len(self.names) - 1}" if len(self.names) > 1 else "") \
            if self.names else ""
        return [self.address, self.country, self.stands_for, name, self.disagree,
                *(self.marks.get(v, "") for v in variants)]


def _row_key(row: Row) -> tuple[int, str, int, int]:
    ip = ipaddress.ip_address(row.address)
    placed = not (row.country.startswith("[") or not row.country_name)
    return (0 if placed else 1, row.country_name if placed else row.country, ip.version, int(ip))


def seed_table(
    report: EndpointReport,
    variants: Sequence[str],
    placements: Callable[[str], Placement | None],
    classify_fn: Callable[[str], str | None],
    stands_for: Mapping[str, str],
) -> list[Row]:
    """One row per remote address contacted by any of `variants`.

    `classify_fn` is asked first; `placements` is only called for addresses it returns
    None for, so special-purpose addresses are never placed. `stands_for` maps a lab
    address to the real-world address it plays ("" when absent).
    """
    wanted = set(variants)
    contacted: dict[str, set[str]] = {}
    for e in report.endpoints:
        if e.variant in wanted:
            contacted.setdefault(e.address, set()).add(e.variant)
    rows = []
    for address, who in contacted.items():
        kind = classify_fn(address)
        if kind is not None:
            country, name = f"[{kind}]", ""
        else:
            p = placements(address)
            if p is None or not p.iso_code:
                country, name = UNKNOWN, ""
            else:
                country, name = p.iso_code, p.country_name or p.iso_code
        rows.append(
            Row(
                address=address,
                country=country,
                country_name=name,
                stands_for=stands_for.get(address, ""),
                marks={v: ("x" if v in who else "") for v in variants},
                special=kind,
            )
        )
    rows.sort(key=_row_key)
    return rows


def write_csv(rows: Sequence[Row], path: str | os.PathLike[str], variants: Sequence[str]) -> None:
    """Header `address,country,country_name,stands_for,<variant>...`, one line per row."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*FIXED_COLUMNS, *variants])
        for row in rows:
            w.writerow(row.cells(variants))


def format_table(rows: Sequence[Row], variants: Sequence[str]) -> str:
    """Aligned plain-text table with a header line and a rule, for the console: the CSV's
    columns that fit a terminal (the first name; countries only when databases disagree)."""
    header = [*CONSOLE_COLUMNS, *variants]
    body = [row.console_cells(variants) for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for r in body:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)
