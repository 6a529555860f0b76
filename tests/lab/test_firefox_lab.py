"""A real web browser in the lab, for real: `testbed run scenarios/firefox-lab.yaml` drives
Debian's Firefox ESR through its GUI (app profile apps/firefox.yaml, reference images) against
real nginx servers in Germany and China, intercepted at the gateway. ~15 s a run.

The second test shows, by difference, which trust store Firefox reads: the same scenario with
the app profile's ``nss_db`` left out (the CAs only in ~/.pki/nssdb and the system bundle) has
Firefox refuse the gateway's certificate — and the run never calls that pinning."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT, TESTBED, needs_root, processes_mentioning, run_dirs, run_objects

pytestmark = [
    needs_root, pytest.mark.e2e, pytest.mark.root,
    pytest.mark.skipif(shutil.which("firefox-esr") is None or shutil.which("nginx") is None,
                       reason="needs Debian's firefox-esr and nginx-light (make system)"),
]


def _run(scenario: Path, results: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = subprocess.run([*TESTBED, "run", str(scenario), "--results", str(results)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    (run,) = run_dirs(results)
    return out, run


def _tls(run: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run / "capture" / "tls.jsonl").read_text().splitlines()]


def test_firefox_sends_the_canary_from_a_german_page_to_china(tmp_path: Path) -> None:
    out, run = _run(ROOT / "scenarios" / "firefox-lab.yaml", tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    # the seed-style table and the verdicts, as printed
    assert "www.de.lab.example" in out.stdout and "www.cn.lab.example" in out.stdout
    assert "PASS          browser-canary_reaches-country-CN" in out.stdout
    with (run / "analysis" / "endpoints.csv").open() as f:
        rows = {r["address"]: r for r in csv.DictReader(f)}
    assert {a: r["country"] for a, r in rows.items() if r["browser"] == "x"} == {
        "198.51.100.80": "DE", "203.0.113.80": "CN"}
    verdicts = {v["id"]: v for v in json.loads((run / "verdicts.json").read_text())["verdicts"]}
    assert {i: v["status"] for i, v in verdicts.items()} == {
        "browser-reaches-country-DE": "pass", "browser-reaches-country-CN": "pass",
        "browser-only_reaches-country-DE-country-CN": "pass",
        "browser-canary_reaches-country-CN": "pass",
        "browser-canary_never_reaches-country-DE": "pass"}
    canary = json.loads((run / "manifest.json").read_text())["canary"]
    hit = verdicts["browser-canary_reaches-country-CN"]["evidence"][0]
    assert hit["kind"] == "canary-decrypted" and hit["address"] == "203.0.113.80"
    # the form's request, decrypted at the gateway, reached the real Chinese server
    access = run / "lab" / "daemons" / "www.cn.lab.example" / "logs" / "access.log"
    assert f"GET /thanks.html?q={canary}" in access.read_text()
    outcomes = {(o["sni"], o["outcome"]) for o in _tls(run) if o["event"] == "outcome"}
    assert outcomes == {("www.de.lab.example", "intercepted"),
                        ("www.cn.lab.example", "intercepted")}
    # Firefox read the CAs from its own profile's database, named by the app profile
    trust = json.loads((run / "guests" / "browser" / "trust.json").read_text())["stores"]
    assert {"store": "nss", "installed": True, "where": "~/.mozilla/firefox/testbed"} in trust
    profile = run / "guests" / "browser" / "home" / ".mozilla" / "firefox" / "testbed"
    assert (profile / "cert9.db").is_file() and (profile / "user.js").is_file()
    for shot in ("open", "submit"):
        assert (run / "screenshots" / "browser" / f"{shot}.png").stat().st_size > 1000
    assert run_objects(json.loads((run / "manifest.json").read_text())["lab"]["tag"]) == []
    assert processes_mentioning(str(run)) == []


def test_firefox_without_its_database_named_refuses_our_ca_and_is_never_pinned(
        tmp_path: Path) -> None:
    tree = tmp_path / "scenarios"
    shutil.copytree(ROOT / "scenarios", tree)
    app = tree / "apps" / "firefox.yaml"
    text = app.read_text()
    assert "\nnss_db:" in text and "timeout: 60" in text
    app.write_text(text.replace("\nnss_db:", "\n# nss_db:").replace("timeout: 60", "timeout: 8"))
    out, run = _run(tree / "firefox-lab.yaml", tmp_path / "results")
    assert "open FAILED: image form-heading.png not found" in out.stdout, out.stdout[-3000:]
    tls = _tls(run)
    refused = [r for r in tls if r["event"] == "tls_failed" and r.get("side") == "client"]
    assert refused and all("unknown ca" in str(r["error"]) for r in refused)
    outcomes = {str(o["outcome"]) for o in tls if o["event"] == "outcome"}
    assert outcomes and "pinned" not in outcomes and "intercepted" not in outcomes
    assert "flows.mitm is empty" not in out.stdout  # nothing was decrypted: no damage
    verdicts = {v["id"]: v for v in json.loads((run / "verdicts.json").read_text())["verdicts"]}
    assert verdicts["browser-canary_reaches-country-CN"]["status"] == "inconclusive"
    assert verdicts["browser-canary_never_reaches-country-DE"]["status"] == "inconclusive"
