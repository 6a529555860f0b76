"""What the report highlights comes from the scenario's expectations, never from the code: a
data-residency study about Germany and France gets a page about Germany and France."""

from __future__ import annotations

import json
import re
from pathlib import Path

from testbed.report import build_report
from testbed.report.charts import HIGHLIGHT
from testbed.report.data import load_run
from testbed.report.highlight import Highlight, named_places

from .conftest import HOSTILE_NAME, write_json
from .htmldom import Node, parse


def _page(run: Path) -> tuple[str, Node]:
    html = build_report(run).read_text(encoding="utf-8")
    return html, parse(html)


def _visible(node: Node) -> str:
    """The page's text as a reader sees it: no style, no script."""
    return "".join(c if isinstance(c, str) else "" if c.tag in ("script", "style")
                   else _visible(c) for c in node.children)


def test_places_come_from_the_expectations(residency_run: Path, run_dir: Path) -> None:
    eu = Highlight.of(load_run(residency_run))
    assert eu.places == ({"country": "DE"}, {"country": "FR"})
    assert eu.names == ("Germany", "France") and eu.label == "Germany or France"
    assert eu.countries == {"DE", "FR"}
    # an old run whose manifest lacks the expectations' places: the verdicts name them
    seed = Highlight.of(load_run(run_dir))
    assert seed.places == ({"country": "CN"},) and seed.label == "China"


def test_other_place_kinds_and_no_places(residency_run: Path) -> None:
    manifest = json.loads((residency_run / "manifest.json").read_text())
    manifest["expectations"] = [
        {"id": "a", "kind": "never_reaches", "place": {"asn": 4134}, "places": [{"asn": 4134}]},
        {"id": "b", "kind": "never_reaches", "place": {"host": "*.evil.example"}},
        {"id": "c", "kind": "never_reaches", "places": [{"country": "ZZ"}]},
        {"id": "d", "kind": "delivered", "place": {}}]
    write_json(residency_run / "manifest.json", manifest)
    (residency_run / "verdicts.json").unlink()
    data = load_run(residency_run)
    hl = Highlight.of(data)
    assert [p for p in named_places(data)] == [{"asn": 4134}, {"host": "*.evil.example"},
                                              {"country": "ZZ"}]
    assert hl.label == "AS4134, *.evil.example or ZZ"  # no database names ZZ: its code
    assert hl.countries == {"ZZ"}
    assert hl.names_of("198.51.100.30", data.places["198.51.100.30"]) == ["*.evil.example"]
    assert not hl.marks("198.51.100.10", data.places["198.51.100.10"])

    manifest["expectations"] = [{"id": "d", "kind": "delivered", "place": {}}]
    write_json(residency_run / "manifest.json", manifest)
    html, dom = _page(residency_run)
    assert not Highlight.of(load_run(residency_run))
    table = dom.find("table", id="endpoint-table")
    assert not [r for r in table.find_all("tr") if "hot" in r.classes]
    assert not dom.find_all(id="ep-hot") and not dom.find_all(cls="hotText")
    assert "swatch hot" not in html
    assert re.match(r"4 addresses; 1 placed differently", dom.find(id="endpoints")
                    .find("p").text)


def test_residency_study_highlights_de_and_fr_and_says_nothing_about_china(
        residency_run: Path) -> None:
    html, dom = _page(residency_run)
    table = dom.find("table", id="endpoint-table")
    rows = {r.find("td").text.strip(): r for r in table.find("tbody").find_all("tr")}
    hot = {a for a, r in rows.items() if "hot" in r.classes}
    assert hot == {"198.51.100.10", "198.51.100.20"}
    assert {rows[a].attrs["data-country"] for a in hot} == {"DE", "FR"}

    endpoints = dom.find(id="endpoints")
    summary = endpoints.find("p")
    assert summary.find("b", cls="hotText").text == "2 in Germany or France"
    assert "(contacted by eu-app, eu-peer)" in summary.text
    legend = endpoints.find("p", cls="legend")
    assert re.match(r"\s*Germany or France\s", legend.text)
    assert "Germany or France only" in endpoints.find(cls="filters").text

    matrix = dom.find(id="charts").find("svg")
    labels = [t for t in matrix.find_all("text") if t.attrs.get("x") == "10.0"]
    assert [t.text for t in labels] == ["DE Germany", "FR France", "US United States",
                                        "IE Ireland"]
    assert [t.attrs["fill"] for t in labels[:2]] == [HIGHLIGHT, HIGHLIGHT]
    assert all(t.attrs["fill"] != HIGHLIGHT for t in labels[2:])

    chat = dom.find("article", cls="chat")
    assert chat.find("p", cls="alert").text == (
        "The message content reached a server in Germany: 198.51.100.10")
    assert "hot" in chat.find("ul", cls="eps").find("li").classes

    text = _visible(dom)
    assert "china" not in html.lower()
    assert not re.search(r"\bCN\b", text)


def test_hostile_names_and_places_are_escaped(residency_run: Path) -> None:
    manifest = json.loads((residency_run / "manifest.json").read_text())
    manifest["expectations"].append(
        {"id": "x", "kind": "never_reaches", "place": {"host": "<b>*.evil</b>"}})
    manifest["scenario"]["name"] = "<img src=x onerror=alert(1)>"
    write_json(residency_run / "manifest.json", manifest)
    html, dom = _page(residency_run)
    assert len(dom.find_all("script")) == 2  # the report's own; the DNS name stayed text
    assert not dom.find_all("img") and not [b for b in dom.find_all("b") if b.text == "*.evil"]
    assert HOSTILE_NAME in dom.find("table", id="endpoint-table").text
    assert "&lt;script&gt;alert(" in html and '<script>alert("dns")' not in html
    assert "Germany, France or <b>*.evil</b> only" in dom.find(cls="filters").text
    assert dom.find("h1").text == "<img src=x onerror=alert(1)>"


def test_only_reaches_claim_names_its_places(residency_run: Path) -> None:
    _, dom = _page(residency_run)  # the verdict of only_reaches has no single place
    claims = [c.text for c in dom.find(id="verdicts").find_all(cls="claim")]
    assert claims == ["eu-app only reaches country DE or country FR",
                      "chat eu-app → eu-peer passes through country DE"]
