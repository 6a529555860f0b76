"""How the report writes values from the run: times, byte counts, database names, places.

Everything here is plain text; the templates escape it."""

from __future__ import annotations

import datetime

from testbed.run import EndpointRow, Placement


def text(value: object) -> str:
    """``None`` → empty, anything else its ``str``."""
    return "" if value is None else str(value)


def fmt_time(epoch: float | None, clock_only: bool = False) -> str:
    """Epoch seconds as ``2027-01-15 12:00:00 UTC`` (or ``12:00:00.000``); empty for none, the
    number as it is when it is no time."""
    if epoch is None:
        return ""
    try:
        d = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return str(epoch)
    return d.strftime("%H:%M:%S.%f")[:-3] if clock_only else d.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(start: float | None, end: float | None) -> float:
    """``end - start`` in seconds; missing values count as 0."""
    return (end or 0.0) - (start or 0.0)


def human_bytes(n: float) -> str:
    """1234 → '1.2 kB' (decimal units, as network tools print)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def flow_bytes(row: EndpointRow) -> int:
    """Bytes of one endpoint row, both directions."""
    return row.bytes_in + row.bytes_out


def short_db(name: str | None) -> str:
    """'dbip-city-lite-latest.mmdb (2023-04-01)' → 'dbip-city-lite-latest'."""
    return str(name or "?").replace(".mmdb", "").split(" (")[0]


def db_date(name: str) -> str:
    """'dbip-city-lite-latest.mmdb (2023-04-01)' → '2023-04-01'."""
    return name.rpartition(" (")[2].rstrip(")") if " (" in name else ""


def country(place: Placement) -> tuple[str, str]:
    """``(key, label)`` of where an address is, for grouping: a country code, a special-purpose
    class, or unplaced."""
    if place.special:
        return (f"special:{place.special}", f"special-purpose ({place.special})")
    code = place.country
    if not code:
        return ("?", "not placed")
    name = place.country_name
    return (code, f"{code} {name}" if name else code)


def place_text(place: Placement) -> str:
    return country(place)[1]


def join_or(words: list[str]) -> str:
    """['A'] → 'A'; ['A', 'B', 'C'] → 'A, B or C'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
