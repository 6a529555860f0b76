"""Stage ``analyze`` and the verdicts on a run directory made by hand (no lab needed):
the data file becomes the lab's geo database, the capture becomes the seed table, and
``testbed analyze RUN --geoip`` re-scores the same capture with another database."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import geoip2.database
import pytest

from testbed.analysis import MapEntry, write_mmdb
from testbed.orchestrator.analyze import analyze_run, lab_database
from testbed.orchestrator.rundir import RunDir

from ..analysis import pcapbuild as pb

ROOT = Path(__file__).resolve().parents[2]
GUESTS = {"regular": "10.77.0.10", "tom-en": "10.77.0.11", "tom-zh": "10.77.0.12"}
T0 = 1_800_000_000.0


@pytest.fixture
def run(tmp_path) -> RunDir:
    path = tmp_path / "results" / "skype-2013-lab" / "run-1"
    for sub in ("capture", "lab", "analysis"):
        (path / sub).mkdir(parents=True)
    shutil.copy(ROOT / "scenarios" / "lab" / "internet-2013.yaml", path / "lab" / "internet.yaml")
    exps = [{"id": f"{v}-{k}-country-CN", "variant": v, "kind": k, "place": {"country": "CN"}}
            for v, k in (("regular", "never_reaches"), ("tom-en", "reaches"),
                         ("tom-zh", "reaches"))]
    (path / "manifest.json").write_text(json.dumps({
        "guests": GUESTS, "infrastructure": {"10.77.0.1": "gateway (lab resolver)"},
        "capture": {"captured": 8, "received": 8, "dropped": 0, "complete": True},
        "expectations": exps}))
    (path / "events.jsonl").write_text("".join(
        json.dumps({"variant": v, "action": "login", "outcome": "ok"}) + "\n" for v in GUESTS))
    flows = [("10.77.0.10", "198.51.100.39", "tcp", 443),      # regular -> US (64.4.21.39)
             ("10.77.0.10", "239.255.255.250", "udp", 1900),   # SSDP
             ("10.77.0.10", "10.77.0.1", "udp", 53),           # the lab resolver
             ("10.77.0.11", "203.0.113.15", "tcp", 443)]       # tom-en -> CN (211.100.40.15)
    frames = []
    for i, (src, dst, proto, port) in enumerate(flows):
        frames.append(pb.Frame(T0 + i, pb.ether(pb.packet(src, dst, proto, 40000 + i, port))))
        frames.append(pb.Frame(T0 + i + 0.1, pb.ether(pb.packet(dst, src, proto, port,
                                                                40000 + i))))
    pb.write(path / "capture" / "gateway.pcap", pb.pcap_bytes(frames, 1))
    return RunDir(path)


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
    assert rows["203.0.113.15"] == {
        "address": "203.0.113.15", "country": "CN", "country_name": "China",
        "stands_for": "211.100.40.15", "regular": "", "tom-en": "x", "tom-zh": ""}
    assert rows["239.255.255.250"]["country"] == "[multicast]"
    assert rows["198.51.100.39"]["regular"] == "x"
    assert analysis.places["198.51.100.39"]["stands_for"] == "64.4.21.39"
    data = json.loads((run.path / "analysis" / "endpoints.json").read_text())
    assert [e["address"] for e in data["infrastructure"]] == ["10.77.0.1"]
    assert data["geoip"][0]["sha256"] == run.manifest()["geoip"][0]["sha256"]


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

    # Another database that puts 198.51.100.0/24 in China turns regular's claim into a fail.
    other = write_mmdb(tmp_path / "other.mmdb",
                       [MapEntry("198.51.100.0/24", "CN", "China"),
                        MapEntry("203.0.113.0/24", "CN", "China")])
    out = subprocess.run([*cli, "--geoip", str(other)], capture_output=True, text=True,
                         timeout=120)
    verdicts = {v["id"]: v for v in
                json.loads((run.path / "verdicts.json").read_text())["verdicts"]}
    regular = verdicts["regular-never_reaches-country-CN"]
    assert regular["status"] == "fail"
    assert regular["reason"].startswith("regular reached CN: 198.51.100.39 (stands for 64.4.21.39")
    assert "other.mmdb" in regular["reason"]
    assert "expectation failed: regular never reaches CN" in out.stdout


def test_analyze_without_capture_is_a_clear_error(run):
    run.pcap.unlink()
    out = subprocess.run([sys.executable, "-m", "testbed", "analyze", str(run.path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "no capture in this run" in out.stderr and "Traceback" not in out.stderr
