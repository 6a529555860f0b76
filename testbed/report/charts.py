"""The report's charts as geometry: each chart is a list of shapes (text, rectangles, circles,
lines) in drawing order, which ``templates/charts.svg.j2`` writes as inline SVG (no JavaScript
library; readable offline and printed). Each kind of shape is a function here that names its
SVG attributes; the template writes any element."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from .fmt import human_bytes

#: Colours for variants, in order (distinct from the pass/fail/inconclusive colours).
VARIANT_COLOURS = ("#2f6fdf", "#e07b00", "#8a4fd6", "#0f8b8d", "#9c5b2e", "#6e7781")
HIGHLIGHT = "#d1242f"
HIGHLIGHT_BAND = "#ffebe9"
INK, SOFT_INK, FAINT, RULE = "#1f2328", "#424a53", "#656d76", "#d0d7de"


def variant_colour(index: int) -> str:
    return VARIANT_COLOURS[index % len(VARIANT_COLOURS)]


#: a value of an SVG attribute: a ``float`` is written with one decimal, the rest as they are
Value = float | int | str
#: the texts' font (Markup: our own constant, written with its quotes as they are)
FONT = Markup("system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif")


@dataclass(frozen=True)
class Shape:
    """One SVG element: its tag, its attributes in order (one whose value is "" is left out),
    its words (a ``<text>``'s; None for an element without) and its tooltip (``<title>``)."""

    tag: str
    attrs: tuple[tuple[str, Value], ...]
    text: str | None = None
    title: str = ""


def text(x: float, y: float, words: str, *, anchor: str = "start", size: int = 12,
         weight: str = "normal", fill: str = INK) -> Shape:
    return Shape("text", (("x", x), ("y", y), ("text-anchor", anchor), ("font-size", size),
                          ("font-weight", weight), ("fill", fill), ("font-family", FONT)), words)


def rect(x: float, y: float, width: float, height: float, rx: int, fill: str, *,
         title: str = "") -> Shape:
    return Shape("rect", (("x", x), ("y", y), ("width", width), ("height", height), ("rx", rx),
                          ("fill", fill)), title=title)


def circle(cx: float, cy: float, r: float, fill: str = "none", *, stroke: str = "",
           title: str = "") -> Shape:
    return Shape("circle", (("cx", cx), ("cy", cy), ("r", r), ("fill", fill),
                            ("stroke", stroke)), title=title)


def line(x1: float, y1: float, x2: float, y2: float, stroke: str) -> Shape:
    return Shape("line", (("x1", x1), ("y1", y1), ("x2", x2), ("y2", y2), ("stroke", stroke)))


@dataclass(frozen=True)
class Chart:
    """One SVG: its size, its accessible name, its shapes in drawing order."""

    width: int
    height: int
    label: str
    shapes: tuple[Shape, ...]


def _row_head(width: int, band_y: int, band_h: int, label_y: float, label: str,
              hot: bool) -> list[Shape]:
    """A row's label, and for a highlighted row its tinted band and red bold label."""
    band: list[Shape] = [rect(0, band_y, width, band_h, 4, HIGHLIGHT_BAND)] if hot else []
    return [*band, text(10.0, label_y, label, weight="bold" if hot else "normal",
                        fill=HIGHLIGHT if hot else INK)]


def country_matrix(variants: Sequence[str], rows: Sequence[tuple[str, str]],
                   counts: Mapping[tuple[str, str], int], highlight: frozenset[str]) -> Chart:
    """Dot matrix: one row per country (``(key, label)``), one column per variant; a filled dot,
    sized by the number of endpoints, where the variant reached the country; a faint ring where
    it did not. Rows whose key is in ``highlight`` are tinted red."""
    label_w, col_w, row_h, top = 175, 84, 30, 46
    width = label_w + col_w * max(1, len(variants)) + 10
    height = top + row_h * max(1, len(rows)) + 10
    top_count = max([c for c in counts.values() if c] or [1])
    out: list[Shape] = [text(label_w + col_w * j + col_w / 2, 22.0, v, anchor="middle",
                             weight="bold", fill=variant_colour(j))
                        for j, v in enumerate(variants)]
    out.append(line(10, top - 12, width - 10, top - 12, RULE))
    if not rows:
        out.append(text(10.0, float(top + 14), "no endpoints to show", fill=FAINT))
    for i, (key, label) in enumerate(rows):
        y = top + row_h * i
        hot = key in highlight
        out += _row_head(width, y - 6, row_h, float(y + 13), label, hot)
        for j, v in enumerate(variants):
            cx, cy = label_w + col_w * j + col_w / 2, float(y + 9)
            n = counts.get((v, key), 0)
            if n:
                colour = HIGHLIGHT if hot else variant_colour(j)
                out.append(circle(cx - 10, cy, 4 + 7 * math.sqrt(n / top_count), colour,
                                  title=f"{v}: {n} endpoint(s) in {label}"))
                out.append(text(cx + 8, cy + 4, str(n), size=11, fill=SOFT_INK))
            else:
                out.append(circle(cx - 10, cy, 3, stroke=RULE, title=f"{v}: not reached"))
    return Chart(width, height, "Countries reached per variant", tuple(out))


def bytes_bars(variants: Sequence[str], rows: Sequence[tuple[str, str]],
               values: Mapping[tuple[str, str], int], highlight: frozenset[str]) -> Chart:
    """Grouped horizontal bars: for each country (``(key, label)``), one bar per variant with
    the bytes exchanged (both directions), on one linear scale, each bar labelled."""
    label_w, bar_h, gap, top, plot_w = 175, 13, 3, 34, 330
    group_h = len(variants) * (bar_h + gap) + 12
    width = label_w + plot_w + 90
    height = top + group_h * max(1, len(rows)) + 6
    top_value = max([v for v in values.values() if v] or [1])
    out: list[Shape] = []
    x = 10.0
    for j, v in enumerate(variants):  # legend
        out.append(rect(x, 8, 12, 12, 2, variant_colour(j)))
        out.append(text(x + 16, 18.0, v))
        x += 28 + 7.5 * len(v)
    if not rows:
        out.append(text(10.0, float(top + 14), "no traffic to show", fill=FAINT))
    for i, (key, label) in enumerate(rows):
        y0 = top + group_h * i
        mid = y0 + (len(variants) * (bar_h + gap)) / 2 + 4
        out += _row_head(width, y0 - 4, group_h - 4, mid, label, key in highlight)
        for j, v in enumerate(variants):
            y = float(y0 + j * (bar_h + gap))
            n = values.get((v, key), 0)
            w = max(plot_w * n / top_value, 2.0) if n else 0.0
            if n:
                out.append(rect(label_w, y, w, bar_h, 2, variant_colour(j),
                                title=f"{v} ↔ {label}: {n} bytes"))
            out.append(text(label_w + w + 5, y + bar_h - 2, human_bytes(n) if n else "-",
                            size=10, fill=SOFT_INK))
        out.append(line(label_w, y0 - 2, label_w, y0 + len(variants) * (bar_h + gap), "#8c959f"))
    return Chart(width, height, "Bytes per country per variant", tuple(out))


def phase_timeline(phases: Sequence[tuple[str, float, float, str]]) -> Chart | None:
    """A Gantt strip of the run's phases: ``(name, start, end, status)`` in epoch seconds;
    ``None`` without phases."""
    if not phases:
        return None
    t0 = min(p[1] for p in phases)
    t1 = max(p[2] for p in phases)
    span = max(t1 - t0, 1e-6)
    label_w, plot_w, row_h = 130, 520, 20
    width, height = label_w + plot_w + 70, row_h * len(phases) + 8
    out: list[Shape] = []
    for i, (name, start, end, status) in enumerate(phases):
        y = 4 + i * row_h
        x = label_w + plot_w * (start - t0) / span
        w = max(plot_w * (end - start) / span, 2.0)
        colour = {"ok": "#2da44e", "failed": HIGHLIGHT}.get(status, "#bf8700")
        out.append(text(float(label_w - 8), float(y + 12), name, anchor="end", size=11))
        out.append(rect(x, y, w, row_h - 6, 2, colour,
                        title=f"{name}: {end - start:.2f} s ({status})"))
        out.append(text(x + w + 4, float(y + 12), f"{end - start:.1f} s", size=10,
                        fill=SOFT_INK))
    return Chart(width, height, "Phase timeline", tuple(out))
