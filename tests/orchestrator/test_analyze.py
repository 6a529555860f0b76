"""Stage ``analyze`` and the verdicts on a run directory made by hand (no lab needed):
the data file becomes the lab's geo database, the capture becomes the seed table, and
``testbed analyze RUN --geoip`` re-scores the same capture with another database."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import geoip2.database
import pytest

from testbed.analysis import MapEntry, write_mmdb
from testbed.orchestrator.analyze import analyze_run, lab_database


def test_lab_database_places_the_data_file_through_geoip2(run):
    db = lab_database(run)
    assert db is not None
    with geoip2.database.Reader(str(db)) as reader:
        assert reader.country("203.0.113.15").country.iso_code == "CN"
        assert reader.country("198.51.100.39").country.iso_code == "US"
        assert reader.country("198.51.100.39").country.name == "United States"
        with pytest.raises(geoip2.errors.AddressNotFoundError):
            reader.country("239.255.255.250")  # special addresses never go into the map


def test_capture_becomes_the_seed_table(run):
    analysis = analyze_run(run)
    with (run.path / "analysis" / "endpoints.csv").open() as f:
        rows = {r["address"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"198.51.100.39", "239.255.255.250", "203.0.113.15"}
    lab = f"lab-seed-2013.mmdb ({(run.manifest().geoip[0].build_date or '')[:10]})"
    assert rows["203.0.113.15"] == {
        "address": "203.0.113.15", "country": "CN", "country_name": "China",
        "stands_for": "211.100.40.15", "names": "", "asn": "23724",
        "organization": "IDC, China Telecommunications Corporation",  # the bundled ASN database
        "databases": f"CN ({lab}); CN (dbip-city-lite-latest.mmdb "
                     "(2023-04-01), for 211.100.40.15); CN (GeoLite2-City.mmdb (2019-12-24), "
                     "for 211.100.40.15)",
        "regular": "", "tom-en": "x", "tom-zh": ""}
    # the real databases that ship with testbed disagree on the US row's stand-in
    assert rows["198.51.100.39"]["databases"].startswith("US (lab-seed-2013.mmdb")
    assert rows["239.255.255.250"]["country"] == "[multicast]"
    assert rows["198.51.100.39"]["regular"] == "x"
    assert analysis.places["198.51.100.39"].stands_for == "64.4.21.39"
    data = json.loads((run.path / "analysis" / "endpoints.json").read_text())
    assert [e["address"] for e in data["infrastructure"]] == ["10.77.0.1"]
    assert data["geoip"][0]["sha256"] == run.manifest().geoip[0].sha256


def test_analyze_command_judges_and_rescores_with_another_database(run, tmp_path):
    cli = [sys.executable, "-m", "testbed", "analyze", str(run.path)]
    out = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    verdicts = {v["id"]: v for v in
                json.loads((run.path / "verdicts.json").read_text())["verdicts"]}
    assert verdicts["regular-never_reaches-country-CN"]["status"] == "pass"
    assert verdicts["tom-en-reaches-country-CN"]["status"] == "pass"
    # tom-zh produced no traffic: no evidence either way
    assert verdicts["tom-zh-reaches-country-CN"]["status"] == "inconclusive"
    assert out.returncode == 1, out.stdout  # not every verdict passed
    assert "INCONCLUSIVE" in out.stdout

    # Another database that puts 198.51.100.0/24 in China turns regular's claim into a fail,
    # in a re-analysis beside the run: the run's own files stay as they were.
    before = {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()}
    other = write_mmdb(tmp_path / "other.mmdb",
                       [MapEntry("198.51.100.0/24", "CN", "China"),
                        MapEntry("203.0.113.0/24", "CN", "China")])
    out = subprocess.run([*cli, "--geoip", str(other)], capture_output=True, text=True,
                         timeout=120)
    assert {p: p.read_bytes() for p in before} == before
    (derived,) = (run.path / "reanalysis").iterdir()
    assert f"re-analysis: {derived}" in out.stdout
    verdicts = {v["id"]: v for v in
                json.loads((derived / "verdicts.json").read_text())["verdicts"]}
    regular = verdicts["regular-never_reaches-country-CN"]
    assert regular["status"] == "fail"
    assert regular["reason"].startswith("regular reached CN: 198.51.100.39 (stands for 64.4.21.39")
    assert "China per other (" in regular["reason"]
    assert "expectation failed: regular never reaches CN" in out.stdout
    manifest = json.loads((derived / "manifest.json").read_text())
    assert manifest["reanalysis_of"] == "run-1"
    assert [g["file"] for g in manifest["geoip"]] == [str(other)]
    # pytest on the run checks the run, not its re-analyses, unless asked
    plain = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(run.path)], capture_output=True, text=True, timeout=120)
    assert "2 passed, 1 skipped" in plain.stdout  # 3 items: the reanalysis is not collected


def test_analyze_without_capture_is_a_clear_error(run):
    run.pcap.unlink()
    out = subprocess.run([sys.executable, "-m", "testbed", "analyze", str(run.path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "no capture in this run" in out.stderr and "Traceback" not in out.stderr
