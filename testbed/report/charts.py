"""Inline SVG charts, drawn in Python (no JavaScript library, readable offline and printed)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

#: Colours for variants, in order (distinct from the pass/fail/inconclusive colours).
VARIANT_COLOURS = ("#2f6fdf", "#e07b00", "#8a4fd6", "#0f8b8d", "#9c5b2e", "#6e7781")
HIGHLIGHT = "#d1242f"
FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif\""


def variant_colour(index: int) -> str:
    return VARIANT_COLOURS[index % len(VARIANT_COLOURS)]


def human_bytes(n: float) -> str:
    """1234 → '1.2 kB' (decimal units, as network tools print)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def _t(x: float, y: float, text: str, *, anchor: str = "start", size: int = 12,
       weight: str = "normal", fill: str = "#1f2328") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'font-weight="{weight}" fill="{fill}" {FONT}>{escape(text)}</text>')


def _row_head(width: float, band_y: float, band_h: float, label_y: float, label: str,
              hot: bool) -> list[str]:
    """A row's label, and for a highlighted row its tinted band and red bold label."""
    band = [f'<rect x="0" y="{band_y}" width="{width}" height="{band_h}" rx="4" '
            'fill="#ffebe9"/>'] if hot else []
    return [*band, _t(10, label_y, label, weight="bold" if hot else "normal",
                      fill=HIGHLIGHT if hot else "#1f2328")]


def country_matrix_svg(variants: Sequence[str], rows: Sequence[tuple[str, str]],
                       counts: Mapping[tuple[str, str], int],
                       highlight: frozenset[str] = frozenset({"CN"})) -> str:
    """Dot matrix: one row per country (``(key, label)``), one column per variant; a filled dot,
    sized by the number of endpoints, where the variant reached the country; a faint ring where
    it did not. Rows whose key is in ``highlight`` are tinted red."""
    label_w, col_w, row_h, top = 175, 84, 30, 46
    width = label_w + col_w * max(1, len(variants)) + 10
    height = top + row_h * max(1, len(rows)) + 10
    top_count = max([c for c in counts.values() if c] or [1])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}"'
           f' width="{width}" height="{height}" role="img" aria-label="Countries reached per '
           f'variant">']
    for j, v in enumerate(variants):
        cx = label_w + col_w * j + col_w / 2
        out.append(_t(cx, 22, v, anchor="middle", weight="bold", fill=variant_colour(j)))
    out.append(f'<line x1="10" y1="{top - 12}" x2="{width - 10}" y2="{top - 12}" '
               'stroke="#d0d7de"/>')
    if not rows:
        out.append(_t(10, top + 14, "no endpoints to show", fill="#656d76"))
    for i, (key, label) in enumerate(rows):
        y = top + row_h * i
        hot = key in highlight
        out += _row_head(width, y - 6, row_h, y + 13, label, hot)
        for j, v in enumerate(variants):
            cx, cy = label_w + col_w * j + col_w / 2, y + 9
            n = counts.get((v, key), 0)
            if n:
                r = 4 + 7 * math.sqrt(n / top_count)
                colour = HIGHLIGHT if hot else variant_colour(j)
                out.append(f'<circle cx="{cx - 10:.1f}" cy="{cy:.1f}" r="{r:.1f}" '
                           f'fill="{colour}"><title>{escape(v)}: {n} endpoint(s) in '
                           f'{escape(label)}</title></circle>')
                out.append(_t(cx + 8, cy + 4, str(n), size=11, fill="#424a53"))
            else:
                out.append(f'<circle cx="{cx - 10:.1f}" cy="{cy:.1f}" r="3" fill="none" '
                           f'stroke="#d0d7de"><title>{escape(v)}: not reached</title></circle>')
    out.append("</svg>")
    return "".join(out)


def bytes_bars_svg(variants: Sequence[str], rows: Sequence[tuple[str, str]],
                   values: Mapping[tuple[str, str], int],
                   highlight: frozenset[str] = frozenset({"CN"})) -> str:
    """Grouped horizontal bars: for each country (``(key, label)``), one bar per variant with
    the bytes exchanged (both directions), on one linear scale, each bar labelled."""
    label_w, bar_h, gap, top, plot_w = 175, 13, 3, 34, 330
    group_h = len(variants) * (bar_h + gap) + 12
    width = label_w + plot_w + 90
    height = top + group_h * max(1, len(rows)) + 6
    top_value = max([v for v in values.values() if v] or [1])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}"'
           f' width="{width}" height="{height}" role="img" aria-label="Bytes per country per '
           f'variant">']
    x = 10.0
    for j, v in enumerate(variants):  # legend
        out.append(f'<rect x="{x:.1f}" y="8" width="12" height="12" rx="2" '
                   f'fill="{variant_colour(j)}"/>')
        out.append(_t(x + 16, 18, v, size=12))
        x += 28 + 7.5 * len(v)
    if not rows:
        out.append(_t(10, top + 14, "no traffic to show", fill="#656d76"))
    for i, (key, label) in enumerate(rows):
        y0 = top + group_h * i
        mid = y0 + (len(variants) * (bar_h + gap)) / 2 + 4
        out += _row_head(width, y0 - 4, group_h - 4, mid, label, key in highlight)
        for j, v in enumerate(variants):
            y = y0 + j * (bar_h + gap)
            n = values.get((v, key), 0)
            w = plot_w * n / top_value if n else 0
            if n:
                w = max(w, 2)
                out.append(f'<rect x="{label_w}" y="{y:.1f}" width="{w:.1f}" height="{bar_h}" '
                           f'rx="2" fill="{variant_colour(j)}"><title>{escape(v)} ↔ '
                           f'{escape(label)}: {n} bytes</title></rect>')
            out.append(_t(label_w + w + 5, y + bar_h - 2, human_bytes(n) if n else "-",
                          size=10, fill="#424a53"))
        out.append(f'<line x1="{label_w}" y1="{y0 - 2}" x2="{label_w}" '
                   f'y2="{y0 + len(variants) * (bar_h + gap)}" stroke="#8c959f"/>')
    out.append("</svg>")
    return "".join(out)


def phase_timeline_svg(phases: Sequence[tuple[str, float, float, str]]) -> str:
    """A Gantt strip of the run's phases: ``(name, start, end, status)`` in epoch seconds."""
    if not phases:
        return ""
    t0 = min(p[1] for p in phases)
    t1 = max(p[2] for p in phases)
    span = max(t1 - t0, 1e-6)
    label_w, plot_w, row_h = 130, 520, 20
    width, height = label_w + plot_w + 70, row_h * len(phases) + 8
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}"'
           f' width="{width}" height="{height}" role="img" aria-label="Phase timeline">']
    for i, (name, start, end, status) in enumerate(phases):
        y = 4 + i * row_h
        x = label_w + plot_w * (start - t0) / span
        w = max(plot_w * (end - start) / span, 2)
        colour = {"ok": "#2da44e", "failed": HIGHLIGHT}.get(status, "#bf8700")
        out.append(_t(label_w - 8, y + 12, name, anchor="end", size=11))
        out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}" rx="2" '
                   f'fill="{colour}"><title>{escape(name)}: {end - start:.2f} s '
                   f'({escape(status)})</title></rect>')
        out.append(_t(x + w + 4, y + 12, f"{end - start:.1f} s", size=10, fill="#424a53"))
    out.append("</svg>")
    return "".join(out)
