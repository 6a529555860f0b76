"""The seed scenario on the embedded lab, for real: namespaces, Xvfb, the agent driving the
reference client with pyautogui, tcpdump and mitmdump at the gateway, geoip2, pytest verdicts."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from testbed.lab import owners
from testbed.lab.internet_map import load_internet
from testbed.lab.refclient.network import BuildProfile

from .conftest import (
    ROOT,
    SECRET,
    TESTBED,
    VARIANTS,
    needs_root,
    processes_mentioning,
    profile_urls,
    run_objects,
    run_tag,
)

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root]


def test_exits_zero_and_prints_table_and_three_passing_verdicts(seed_run):
    proc = seed_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "address" in proc.stdout and "stands_for" in proc.stdout
    assert proc.stdout.count("PASS ") == 10
    verdicts = json.loads((seed_run["run"] / "verdicts.json").read_text())["verdicts"]
    assert {v["id"]: v["status"] for v in verdicts} == {
        "regular-never_reaches-country-CN": "pass",
        "control-never_reaches-country-CN": "pass",
        "tom-en-reaches-country-CN": "pass",
        "tom-zh-reaches-country-CN": "pass",
        "chat-with-tom-user-reaches-china": "pass",
        "chat-with-regular-peer-stays-out-of-china": "pass",
        "tom-user-never-sees-censored-word": "pass",
        "regular-peer-sees-censored-word": "pass",
        "default-vantage-download-not-redirected": "pass",
        "default-vantage-gets-skypes-build": "pass",
    }
    for v in verdicts:
        assert v["evidence"], v
        assert v["geoip"][0]["sha256"]


def test_table_matches_the_profiles_exactly(seed_run):
    run = seed_run["run"]
    internet = load_internet(run / "lab" / "internet.yaml")
    with (run / "analysis" / "endpoints.csv").open() as f:
        rows = list(csv.DictReader(f))
    by_address = {r["address"]: r for r in rows}
    for variant in VARIANTS:
        build = "regular" if variant == "control" else variant
        profile = BuildProfile.load(ROOT / "scenarios" / "lab" / "builds" / f"{build}.yaml")
        hosts = {urllib.parse.urlsplit(u).hostname for u in profile_urls(profile)}
        expected = {s.address for s in internet.servers if s.name in hosts}
        expected.add("239.255.255.250")
        if variant == "regular":  # the download session: www.skype, not redirected
            expected.add(internet.by_name("www.skype.lab.example").address)  # type: ignore[union-attr]
        got = {a for a, r in by_address.items() if r[variant] == "x"}
        assert got == expected, f"{variant}: missing {expected - got}, extra {got - expected}"
        china = [r for r in rows if r[variant] == "x" and r["country"] == "CN"]
        assert (not china) if build == "regular" else china, variant
    ssdp = by_address["239.255.255.250"]
    assert ssdp["country"] == "[multicast]" and ssdp["country_name"] == ""
    for r in rows:
        if r["address"] != "239.255.255.250":
            assert r["stands_for"] == (internet.by_address()[r["address"]].stands_for or "")


def test_run_directory_is_complete(seed_run):
    run = seed_run["run"]
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "complete"
    assert m["scenario"]["sha256"]
    assert m["capture"]["complete"] and m["capture"]["dropped"] == 0
    assert m["capture"]["captured"] > 100
    assert {"network", "capture-start", "guests", "sessions", "capture-stop", "teardown",
            "analyze", "verdicts"} <= set(m["phases"])
    assert all(p["status"] == "ok" for p in m["phases"].values())
    assert m["tools"]["mitmproxy"] and m["tools"]["tcpdump"]
    assert m["geoip"][0]["database_type"]
    for variant in VARIANTS:
        for phase in ("launch", "login", "about"):
            png = run / "screenshots" / variant / f"{phase}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert (run / "junit.xml").read_text().count("<testcase") == 10
    assert (run / "capture" / "flows.mitm").stat().st_size > 0
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    assert {(e["variant"], e["action"]) for e in events} >= {
        ("regular", "login"), ("tom-zh", "chat_wait"), ("regular", "call"),
        ("tom-en", "answer"), ("control", "chat_wait")}
    assert all(e["outcome"] == "ok" for e in events)


def test_no_secret_in_results(seed_run):
    run = seed_run["run"]
    for f in run.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    assert SECRET not in seed_run["proc"].stdout + seed_run["proc"].stderr


def test_nothing_of_the_run_remains(seed_run):
    """Only this run's objects (by its tag): other lab runs may go on beside the suite."""
    tag = run_tag(seed_run["run"])
    assert run_objects(tag) == []
    assert processes_mentioning(str(seed_run["run"])) == []
    assert not owners.claim_file(tag).exists()


def test_pytest_checks_the_finished_run_again(seed_run):
    run = seed_run["run"]
    path = f"{Path(TESTBED[0]).parent}:{os.environ['PATH']}"
    proc = subprocess.run(["pytest", str(run), "-p", "no:cacheprovider", "-q"],
                          cwd=run, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PATH=path))
    assert proc.returncode == 0, proc.stdout
    assert "10 passed" in proc.stdout


def test_capture_sees_real_destinations_both_ways(seed_run):
    """The gateway's REDIRECT to mitmproxy must not show in the capture (br_netfilter)."""
    analysis = json.loads((seed_run["run"] / "analysis" / "endpoints.json").read_text())
    assert not [e for e in analysis["infrastructure"] if e["port"] == 8080]
    for e in analysis["endpoints"]:
        if e["proto"] == "tcp":
            assert e["packets_out"] > 0 and e["packets_in"] > 0, e
