"""The report in a real headless browser (Debian's chromium): the DOM after scripts ran, and a
screenshot kept as a test artifact. Only local files; no network."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from testbed.report import build_report

from .htmldom import parse

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (make setup installs it: Makefile "
    "APT_PACKAGES); the headless browser test needs it")
SAFE_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="testbed-chromium-") as profile:
        return subprocess.run([CHROMIUM, *SAFE_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120, check=False)


def test_report_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    url = build_report(run_dir).resolve().as_uri()

    dumped = chromium("--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    assert "Uncaught" not in dumped.stderr, dumped.stderr[-2000:]  # no script errors
    dom = parse(dumped.stdout)
    table = dom.find("table", id="endpoint-table")
    rows = table.find("tbody").find_all("tr")
    assert {r.find("td").text.strip() for r in rows} == {
        "203.0.113.15", "198.51.100.39", "198.51.100.36", "239.255.255.250"}
    assert "js" in table.classes  # the sorting script ran
    filters = dom.find(cls="filters")
    assert "hidden" not in filters.attrs  # the filter box was switched on
    assert "4 of 4 rows" in dom.find(id="ep-count").text
    verdicts = dom.find_all("article", cls="verdict")
    assert [v.attrs["data-status"] for v in verdicts] == ["pass", "fail", "inconclusive"]
    assert dom.find(id="zoom") is not None
    assert len(dom.find_all("script")) == 2  # the chat's <script> text stayed text

    shot = tmp_path / "report-screenshot.png"
    taken = chromium(f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        colours = im.convert("RGB").resize((64, 100)).getcolors(64 * 100)
        assert colours is not None and len(colours) > 20  # a page was drawn, not a blank
    artifacts = os.environ.get("TESTBED_ARTIFACTS")
    if artifacts and Path(artifacts).is_dir():
        shutil.copyfile(shot, Path(artifacts) / "report-screenshot.png")


def _red_pixels(shot: Path) -> int:
    """Pixels of the highlight colour (#d1242f, give or take anti-aliasing)."""
    with Image.open(shot) as im:
        return sum(n for n, (r, g, b) in im.convert("RGB").getcolors(2000 * 1280) or []
                   if r > 180 and g < 80 and b < 90)


def test_residency_report_in_headless_chromium(residency_run: Path, tmp_path: Path) -> None:
    """A study about Germany and France, as a browser shows it: DE and FR highlighted, the
    filter offers them, nothing says China; the screenshot is kept as an artifact."""
    url = build_report(residency_run).resolve().as_uri()
    dumped = chromium("--dump-dom", url)
    assert dumped.returncode == 0 and "Uncaught" not in dumped.stderr, dumped.stderr[-2000:]
    dom = parse(dumped.stdout)
    rows = dom.find("table", id="endpoint-table").find("tbody").find_all("tr")
    assert {r.attrs["data-country"] for r in rows if "hot" in r.classes} == {"DE", "FR"}
    filters = dom.find(cls="filters")
    assert "hidden" not in filters.attrs and "Germany or France only" in filters.text
    assert "4 of 4 rows" in dom.find(id="ep-count").text
    assert "china" not in dumped.stdout.lower()

    shot = tmp_path / "report-residency-screenshot.png"
    taken = chromium(f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    assert _red_pixels(shot) > 200  # the highlighted rows and chart bands are drawn
    artifacts = os.environ.get("TESTBED_ARTIFACTS")
    if artifacts and Path(artifacts).is_dir():
        shutil.copyfile(shot, Path(artifacts) / "report-residency-screenshot.png")
