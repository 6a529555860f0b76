"""report.html from hand-made run directories, checked with html.parser."""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from testbed._errors import TestbedError
from testbed.report import build_report
from testbed.report import commands as report_commands
from testbed.report.images import thumbnail_data_uri

from .conftest import CANARY, CHINESE, HOSTILE
from .htmldom import Node, parse


def _page(run: Path) -> tuple[str, Node]:
    out = build_report(run)
    assert out == run / "report.html"
    html = out.read_text(encoding="utf-8")
    return html, parse(html)


def test_complete_run_structure(run_dir: Path) -> None:
    _, dom = _page(run_dir)
    assert dom.find("title").text.startswith("FAIL")  # one verdict fails: the run fails
    assert "FAIL" in dom.find(cls="result").text

    verdicts = dom.find_all("article", cls="verdict")
    assert [v.attrs["data-status"] for v in verdicts] == ["pass", "fail", "inconclusive"]
    assert "st-inconclusive" in verdicts[2].classes
    assert "cannot support the claim" in verdicts[2].find(cls="note").text
    assert "about failed" in verdicts[2].find(cls="reason").text
    assert "DBIP-City-Lite (2023-04-01)" in verdicts[0].find(cls="dbs").text

    table = dom.find("table", id="endpoint-table")
    head = [th.text.strip() for th in table.find("thead").find_all("th")]
    assert head[:3] == ["Address", "Names", "Country"]
    assert {"regular", "tom-en", "tom-zh"} <= set(head)
    rows = {r.find("td").text.strip(): r for r in table.find("tbody").find_all("tr")}
    assert set(rows) == {"203.0.113.15", "198.51.100.39", "198.51.100.36", "239.255.255.250"}
    cn = rows["203.0.113.15"]
    assert "hot" in cn.classes and "China" in cn.text
    marks = [td.text for td in cn.find_all("td", cls="mark")]
    assert marks == ["", "✓", "✓"]  # regular, tom-en, tom-zh
    assert "disagree" in rows["198.51.100.36"].classes
    assert "⚠ GB" in rows["198.51.100.36"].find("td", cls="odd").text
    special = rows["239.255.255.250"]
    assert "special" in special.classes and "multicast" in special.text
    assert "never geolocated" in special.text
    assert not special.find_all("td", cls="odd")

    charts = dom.find(id="charts").find_all("svg")
    assert len(charts) == 2 and "CN China" in charts[0].text

    shots = dom.find("table", cls="shots")
    phases = [th.text for th in shots.find("tbody").find_all("th")]
    assert phases == ["launch", "login", "about-failure"]
    imgs = shots.find_all("img")
    assert len(imgs) == 5 and all(i.attrs["src"].startswith("data:image/") for i in imgs)
    assert shots.find_all("td", cls="failed")

    unopened = dom.find(id="capture")  # an older run's "pinned": a refusal, nothing more
    assert "Connections not opened" in unopened.text and "198.51.100.39:443" in unopened.text
    assert "unclassified" in unopened.text and "no retry without interception" in unopened.text
    prov = dom.find(id="provenance")
    assert "b" * 64 in prov.text and "2023-04-01T00:26:17+00:00" in prov.text
    assert "12.3.1" in prov.text and "sessions" in prov.text


def test_chat_paths_escaped_and_strongest_first(run_dir: Path) -> None:
    html, dom = _page(run_dir)
    chats = dom.find_all("article", cls="chat")
    assert [c.find("blockquote").text for c in chats] == [CHINESE, HOSTILE]
    assert "carries the canary" in chats[0].text and "canary" in chats[0].classes
    assert "reached a server in China" in chats[0].text
    strengths = [r.find("td").text for r in chats[0].find("tbody").find_all("tr")]
    assert strengths == ["strong", "weak"]
    assert "neutral" in chats[1].text
    # the hostile text is data, never markup: only the report's own two scripts exist
    scripts = dom.find_all("script")
    assert len(scripts) == 2
    assert '<script>alert("pwned")' not in html
    quote = "(&quot;|&#34;)"  # either spelling of an escaped quote
    assert re.search(f"&lt;script&gt;alert\\({quote}pwned{quote}\\)&lt;/script&gt;", html)
    assert not [b for b in dom.find_all("b") if b.text == "bold"]
    assert CANARY in dom.find(id="chats").text


def test_self_contained(run_dir: Path) -> None:
    html, dom = _page(run_dir)
    # The only way out is a link a reader follows: the GeoIP attributions' sources (DB-IP
    # asks for a link back), in the provenance section, without a referrer. Nothing loads.
    attribution_links = {id(a) for a in dom.find(id="provenance").find_all("a")}
    for node in dom.iter():
        for attr in ("src", "href"):
            value = node.attrs.get(attr)
            if value is None or value.startswith(("data:", "#")):
                continue
            assert (node.tag, attr) == ("a", "href") and id(node) in attribution_links, (
                node.tag, value[:60])
            assert value.startswith("https://") and "noreferrer" in (node.attrs.get("rel") or "")
    assert [a.attrs["href"] for a in dom.find(id="provenance").find_all("a")] == [
        "https://db-ip.com"]  # the attribution of the run's one database links back
    assert not dom.find_all("link")
    assert not re.search(r"url\((?!#)", html)  # no CSS fetches
    meta = json.loads(dom.find("script", id="report-meta").text)
    assert meta == {"run": "20270115T120000Z-abcd", "result": "FAIL"}
    assert len(html) < 2_000_000


def test_screenshots_downscaled_and_cropped(run_dir: Path) -> None:
    uri = thumbnail_data_uri(run_dir / "screenshots" / "regular" / "launch.png")
    assert uri is not None
    raw = base64.b64decode(uri.split(",", 1)[1])
    with Image.open(io.BytesIO(raw)) as im:
        assert im.width <= 480
        assert im.width < 1024 * 0.7  # the black desktop around the window is cut away
    bad = run_dir / "screenshots" / "regular" / "broken.png"
    bad.write_bytes(b"not a png")
    assert thumbnail_data_uri(bad) is None
    _, dom = _page(run_dir)  # an unreadable image is named, not fatal
    assert "unreadable image" in dom.find(id="screenshots").text


def test_crashed_run_says_what_is_missing(crashed_run: Path) -> None:
    _, dom = _page(crashed_run)
    assert dom.find("title").text.startswith("NO VERDICTS")
    missing = dom.find(id="missing").text
    for rel in ("verdicts.json", "analysis/endpoints.json", "analysis/evidence.json",
                "capture/tls.jsonl", "screenshots/"):
        assert rel in missing
    assert "events.jsonl: 1 damaged line(s) skipped" in missing
    assert "This run is incomplete" in missing
    assert "agent did not answer within 30 s" in dom.find("p", cls="alert").text
    verdicts = dom.find(id="verdicts").text
    assert "No verdicts" in verdicts and "regular-never_reaches-country-CN" in verdicts
    assert "No endpoint table" in dom.find(id="endpoints").text
    assert "never stopped cleanly" in dom.find(id="capture").text
    assert "failed" in dom.find(id="provenance").text


def test_empty_and_damaged_runs(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _, dom = _page(empty)
    assert "manifest.json" in dom.find(id="missing").text
    (empty / "verdicts.json").write_text("{not json")
    (empty / "manifest.json").write_text('["a list, not a manifest"]')
    (empty / "analysis").mkdir()
    (empty / "analysis" / "endpoints.json").write_text(json.dumps(
        {"endpoints": [{"variant": "x"}, "junk"], "places": {"1.2.3.4": {"views": ["junk"]}}}))
    _, dom = _page(empty)
    assert "verdicts.json: unreadable" in dom.find(id="missing").text
    with pytest.raises(TestbedError, match="not a run directory"):
        build_report(tmp_path / "nope")


def test_damaged_analysis_files_are_named_and_the_rest_shown(run_dir: Path) -> None:
    (run_dir / "analysis" / "evidence.json").write_text('{"chats": "x"}')
    (run_dir / "capture" / "tls.jsonl").write_text('{"event": "pinned", "port": "443"}\n')
    (run_dir / "analysis" / "endpoints.json").write_text(
        '{"endpoints": [], "places": {"9.9.9.9": {"country": 5}}}')
    _, dom = _page(run_dir)
    missing = dom.find(id="missing").text
    assert "analysis/evidence.json: damaged: 'chats' should be a list" in missing
    assert "analysis/endpoints.json: damaged: places['9.9.9.9']" in missing
    assert "capture/tls.jsonl: 1 damaged line(s) skipped" in missing
    assert "No endpoint table" in dom.find(id="endpoints").text
    assert not dom.find_all("article", cls="chat")
    assert len(dom.find_all("article", cls="verdict")) == 3  # the rest of the run is shown
    assert "12.3.1" in dom.find(id="provenance").text


def test_command(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="testbed")
    sub = parser.add_subparsers(dest="command", required=True)
    report_commands.add_parser(sub)
    args = parser.parse_args(["report", str(run_dir)])
    assert args.open is False
    assert args.func(args) == 0
    assert str(run_dir / "report.html") in capsys.readouterr().out
    assert (run_dir / "report.html").is_file()
