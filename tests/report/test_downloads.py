"""The report's Downloads table: each download a variant made, where it was sent and what it
was served; absent when the run made none; a damaged record leaves the page readable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.report import build_report

URL, TOM = "http://www.skype.lab.example/SkypeSetup.exe", "http://skype.tom.lab.example/SkypeSetup.exe"
REDIRECTED = {"url": URL, "chain": [{"url": URL, "status": 302, "location": TOM},
                                    {"url": TOM, "status": 200}],
              "final_url": TOM, "final_host": "skype.tom.lab.example", "status": 200,
              "size": 50, "sha256": "2" * 64}
FAILED = {"url": URL, "chain": [], "error": f"{URL} could not be fetched: timed out"}


def add_events(run: Path, *details: object) -> None:
    lines = [{"session": "download", "variant": "cn-visitor", "action": "download",
              "start": 1796000000.0, "end": 1796000001.0, "outcome": "ok",
              "steps": [{"step": "download", "outcome": "ok", "start": 1796000000.5,
                         "detail": d}]} for d in details]
    with (run / "events.jsonl").open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(x) + "\n" for x in lines)


def downloads_section(html: str) -> str:
    start = html.find("<h3>Downloads</h3>")
    return "" if start < 0 else html[start:html.index("</table>", start)]


def test_downloads_are_listed_with_their_redirects(run_dir: Path) -> None:
    add_events(run_dir, REDIRECTED, FAILED)
    table = downloads_section(build_report(run_dir).read_text(encoding="utf-8"))
    assert f"302 → {TOM}" in table and "skype.tom.lab.example" in table
    assert "2" * 64 in table and ">50<" in table
    assert "could not be fetched: timed out" in table
    assert table.count("<tr>") == 3  # the header and two downloads


@pytest.mark.parametrize("detail", [None, {"chain": "broken", "url": URL}])
def test_no_table_without_downloads_or_with_a_damaged_one(run_dir: Path, detail: object) -> None:
    if detail is not None:
        add_events(run_dir, detail)
    html = build_report(run_dir).read_text(encoding="utf-8")
    assert downloads_section(html) == "" and "<h2>Actions</h2>" in html
