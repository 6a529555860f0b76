"""The charts' shapes as the template writes them: each kind becomes its SVG element with its
attributes in order; floats get one decimal; an empty attribute is left out; a tooltip is a
<title> child; user text is escaped."""

from __future__ import annotations

import pytest

from testbed.report import charts
from testbed.report.render import environment

FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif\""


def svg_of(*shapes: charts.Shape) -> str:
    chart = charts.Chart(10, 20, "a chart", shapes)
    out = str(environment().get_template("charts.svg.j2").module.svg(chart))
    head = ('<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 10 20" '
            'width="10" height="20" role="img" aria-label="a chart">')
    assert out.startswith(head) and out.endswith("</svg>"), out
    return out[len(head):-len("</svg>")]


@pytest.mark.parametrize(("shape", "element"), [
    (charts.text(1.0, 2, "a < b"),
     f'<text x="1.0" y="2" text-anchor="start" font-size="12" font-weight="normal" '
     f'fill="{charts.INK}" {FONT}>a &lt; b</text>'),
    (charts.text(1.25, 2.0, "", anchor="end", size=10, weight="bold", fill="#000"),
     f'<text x="1.2" y="2.0" text-anchor="end" font-size="10" font-weight="bold" fill="#000" '
     f'{FONT}></text>'),
    (charts.rect(0, 1.5, 3.0, 4, 2, "#fff"),
     '<rect x="0" y="1.5" width="3.0" height="4" rx="2" fill="#fff"/>'),
    (charts.rect(0, 1, 3, 4, 2, "#fff", title="x ↔ y: 3 bytes"),
     '<rect x="0" y="1" width="3" height="4" rx="2" fill="#fff"><title>x ↔ y: 3 bytes</title>'
     '</rect>'),
    (charts.circle(1.0, 2.0, 3),
     '<circle cx="1.0" cy="2.0" r="3" fill="none"/>'),
    (charts.circle(1.0, 2.0, 3, stroke="#ccc", title="v: not reached"),
     '<circle cx="1.0" cy="2.0" r="3" fill="none" stroke="#ccc"><title>v: not reached</title>'
     '</circle>'),
    (charts.line(1, 2, 3.0, 4, "#8c959f"),
     '<line x1="1" y1="2" x2="3.0" y2="4" stroke="#8c959f"/>'),
], ids=["text", "text-options", "rect", "rect-title", "circle", "circle-stroke-title", "line"])
def test_each_shape_is_its_element(shape: charts.Shape, element: str):
    assert svg_of(shape) == element


def test_shapes_are_written_in_drawing_order():
    band, label = charts.rect(0, 0, 5, 5, 4, charts.HIGHLIGHT_BAND), charts.text(1, 1, "CN")
    assert svg_of(band, label).index("<rect") < svg_of(band, label).index("<text")
    assert svg_of(label, band).index("<text") < svg_of(label, band).index("<rect")
