"""Where each variant went: the charts (per country) and the endpoint table (per address),
with the study's places (:class:`Highlight`) marked."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from testbed.run import EndpointRow, Placement, files

from . import charts
from .data import RunData, address_key
from .fmt import country, db_date, flow_bytes, human_bytes, short_db, text
from .highlight import Highlight


@dataclass(frozen=True)
class Charts:
    problem: str  # why there is nothing to draw (empty when there is)
    matrix: charts.Chart | None
    bars: charts.Chart | None


def per_variant_country(data: RunData, highlight: Highlight) -> tuple[
        list[tuple[str, str]], dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """Rows ``(key, label)`` (the highlighted countries first, then by bytes), endpoint counts
    and bytes per (variant, country key)."""
    counts: dict[tuple[str, str], set[str]] = defaultdict(set)
    volume: dict[tuple[str, str], int] = defaultdict(int)
    labels: dict[str, str] = {}
    for row in data.endpoint_rows:
        key, label = country(data.place(row.address))
        labels[key] = label
        counts[(row.variant, key)].add(row.address)
        volume[(row.variant, key)] += flow_bytes(row)
    totals: dict[str, int] = defaultdict(int)
    for (_, key), n in volume.items():
        totals[key] += n

    def order(key: str) -> tuple[int, int, str]:
        group = (0 if key in highlight.countries
                 else 2 if key.startswith("special:") or key == "?" else 1)
        return (group, -totals[key], key)

    rows = [(k, labels[k]) for k in sorted(labels, key=order)]
    return rows, {k: len(v) for k, v in counts.items()}, dict(volume)


def charts_view(data: RunData, highlight: Highlight) -> Charts:
    if not data.endpoint_rows:
        return Charts(data.problems.get(files.ENDPOINTS, "empty"), None, None)
    rows, counts, volume = per_variant_country(data, highlight)
    return Charts("", charts.country_matrix(data.variants, rows, counts, highlight.countries),
                  charts.bytes_bars(data.variants, rows, volume, highlight.countries))


@dataclass(frozen=True)
class Column:
    """A column head: a variant (with its colour) or a database (with its date)."""

    name: str
    title: str = ""
    colour: str = ""
    date: str = ""


@dataclass(frozen=True)
class ViewCell:
    """One database's view of one address: ``shown`` False for a special-purpose address
    (empty cell) or a database without a view (a dash)."""

    code: str = ""
    title: str = ""
    odd: bool = False  # differs from the primary database's country
    shown: bool = True
    special: bool = False


@dataclass(frozen=True)
class Mark:
    contacted: bool
    title: str = ""


@dataclass(frozen=True)
class Row:
    address: str
    address_sort: str
    classes: str
    special: str
    country: str
    country_name: str
    disagree: bool
    names: tuple[str, ...]
    views: tuple[ViewCell, ...]
    organization: str
    asn: str
    stands_for: str
    marks: tuple[Mark, ...]
    total: int
    total_text: str


@dataclass(frozen=True)
class EndpointTable:
    problem: str  # why there is no table (empty when there is one)
    highlight: str  # the places marked, in one phrase ("China"); empty for none
    hot_rows: int
    hot_by: str  # the variants that contacted them
    disagree: int
    special: int
    databases: tuple[Column, ...]
    variants: tuple[Column, ...]
    rows: tuple[Row, ...]
    any_organization: bool
    infrastructure: tuple[tuple[str, str], ...]


def databases(places: Mapping[str, Placement]) -> list[str]:
    """Every database named in a view, in order of first appearance (the primary first)."""
    out: list[str] = []
    for p in places.values():
        for view in p.views:
            if str(view.database) not in out:
                out.append(str(view.database))
    return out


def _view_cell(place: Placement, database: str) -> ViewCell:
    """The country code (odd when it differs from the primary), the city and the address
    looked up (the real one it stands for) on hover."""
    if place.special:
        return ViewCell(shown=False, special=True)
    view = next((v for v in place.views if str(v.database) == database), None)
    if view is None:
        return ViewCell(shown=False)
    hover = [f"{database}: {view.country_name or 'no country'}"]
    if view.city:
        hover.append(view.city)
    if view.address:
        hover.append(f"looked up {view.address}"
                     + (" (the address this server stands for)"
                        if view.via == "stands_for" else ""))
    if view.network:
        hover.append(f"network {view.network}")
    return ViewCell(code=view.country or "none", title="; ".join(hover),
                    odd=bool(place.country) and view.country != place.country)


def _row(address: str, p: Placement, by_variant: Mapping[str, list[EndpointRow]],
         variants: list[str], dbs: list[str], hot: bool) -> Row:
    org, asn = p.organization, p.asn
    for view in p.views:
        org = org or view.organization
        asn = asn or view.asn
    marks, total = [], 0
    for v in variants:
        flows = by_variant.get(v, [])
        n = sum(flow_bytes(f) for f in flows)
        total += n
        ports = ", ".join(sorted({f.service for f in flows}))
        marks.append(Mark(True, f"{v}: {ports}, {human_bytes(n)}") if flows else Mark(False))
    classes = [c for c, on in (("hot", hot), ("special", bool(p.special)),
                               ("disagree", p.disagree)) if on]
    return Row(address=address, address_sort=".".join(str(x) for x in address_key(address)[:2]),
               classes=" ".join(classes), special=p.special or "", country=p.country or "",
               country_name=text(p.country_name), disagree=p.disagree, names=p.names,
               views=tuple(_view_cell(p, db) for db in dbs), organization=org or "",
               asn=text(asn or ""), stands_for=p.stands_for or "",
               marks=tuple(marks), total=total, total_text=human_bytes(total))


def endpoint_table(data: RunData, highlight: Highlight) -> EndpointTable:
    places = data.places
    variants = data.variants
    contacted: dict[str, dict[str, list[EndpointRow]]] = defaultdict(lambda: defaultdict(list))
    for row in data.endpoint_rows:
        contacted[row.address][row.variant].append(row)
    addresses = set(places) | set(contacted)

    def order(a: str) -> tuple[int, str, tuple[int, int, str]]:
        p = data.place(a)
        return (1 if p.special else 0, p.country or "~", address_key(a))

    dbs = databases(places)
    rows, hot_by = [], set()
    for a in sorted(addresses, key=order):
        p = data.place(a)
        hot = highlight.marks(a, p)
        if hot:
            hot_by |= set(contacted.get(a, {}))
        rows.append(_row(a, p, contacted.get(a, {}), variants, dbs, hot))
    return EndpointTable(
        problem="" if addresses else data.problems.get(files.ENDPOINTS, "empty"),
        highlight=highlight.label, hot_rows=sum("hot" in r.classes.split() for r in rows),
        hot_by=", ".join(sorted(hot_by)) or "no variant",
        disagree=sum(r.disagree for r in rows),
        special=sum(bool(r.special) for r in rows),
        databases=tuple(Column(short_db(db), title=db, date=db_date(db)) for db in dbs),
        variants=tuple(Column(v, colour=charts.variant_colour(i)) for i, v in enumerate(variants)),
        rows=tuple(rows), any_organization=any(r.organization or r.asn for r in rows),
        infrastructure=tuple(data.manifest.infrastructure.items()))
