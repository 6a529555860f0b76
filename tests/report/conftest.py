"""Hand-made run directories for the report: a complete run and a crashed one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

T0 = 1_800_000_000.0
CANARY = "CANARY-0123456789ab"
GUESTS = {"regular": "10.77.0.10", "tom-en": "10.77.0.11", "tom-zh": "10.77.0.12"}
CHINESE = "明天谈谈六四 " + CANARY
HOSTILE = '<script>alert("pwned")</script> & <b>bold</b>'
LAB_DB = "lab-seed-2013.mmdb (2026-11-26)"
DBIP = "dbip-city-lite-latest.mmdb (2023-04-01)"
GEOIP = [{"file": "/x/analysis/geo/lab-seed-2013.mmdb", "database_type": "Testbed-Lab-Country",
          "build_date": "2026-11-26T21:59:45+00:00", "sha256": "a" * 64},
         {"file": "/x/dbip-city-lite-latest.mmdb", "database_type": "DBIP-City-Lite",
          "build_date": "2023-04-01T00:26:17+00:00", "sha256": "b" * 64,
          "attribution": "IP Geolocation by DB-IP (https://db-ip.com)"}]


def _place(address: str, country: str, name: str, stands_for: str,
           other: str | None = None) -> dict:
    other = other or country
    return {"special": None, "stands_for": stands_for, "names": [f"srv.{country.lower()}.example"],
            "country": country, "country_name": name, "database": LAB_DB, "asn": None,
            "organization": None,
            "views": [{"database": LAB_DB, "via": "address", "address": address,
                       "country": country, "country_name": name, "city": None},
                      {"database": DBIP, "via": "stands_for", "address": stands_for,
                       "country": other, "country_name": other, "city": "Somewhere"}],
            "countries": sorted({country, other}), "disagree": other != country}


PLACES = {
    "203.0.113.15": _place("203.0.113.15", "CN", "China", "211.100.40.15"),
    "198.51.100.39": _place("198.51.100.39", "US", "United States", "64.4.21.39"),
    "198.51.100.36": _place("198.51.100.36", "BE", "Belgium", "212.8.166.36", other="GB"),
    "239.255.255.250": {"special": "multicast", "stands_for": None, "names": [], "country": None,
                        "views": [], "countries": [], "disagree": False},
}


def _ep(variant: str, address: str, proto: str, port: int, size: int) -> dict:
    return {"variant": variant, "address": address, "proto": proto, "port": port,
            "packets_out": 3, "packets_in": 2, "bytes_out": size, "bytes_in": size * 2,
            "first_seen": T0 + 5, "last_seen": T0 + 9}


ENDPOINTS = [_ep("regular", "198.51.100.39", "tcp", 443, 4000),
             _ep("regular", "198.51.100.36", "tcp", 443, 100),
             _ep("regular", "239.255.255.250", "udp", 1900, 143),
             _ep("tom-en", "203.0.113.15", "tcp", 443, 1500),
             _ep("tom-en", "198.51.100.39", "tcp", 443, 3000),
             _ep("tom-zh", "203.0.113.15", "tcp", 80, 900)]


def _screenshot(path: Path, label: str, colour: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", (1024, 768), "black")  # an Xvfb desktop with one small window
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, 600, 400), fill="white")
    d.rectangle((0, 0, 600, 30), fill=colour)
    d.text((10, 10), label, fill="black")
    im.save(path)


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


def _manifest(status: str = "complete", **extra: object) -> dict:
    return {
        "testbed_run": 1, "run_id": "20270115T120000Z-abcd", "status": status, "started": T0,
        "scenario": {"name": "skype-2013-lab", "path": "scenarios/skype-2013-lab.yaml",
                     "sha256": "c" * 64},
        "provider": "lab", "canary": CANARY,
        "tools": {"python": "3.13.0", "mitmproxy": "12.3.1", "geoip2": "5.3.0",
                  "tcpdump": "tcpdump version 4.99.3"},
        "expectations": [{"id": "regular-never_reaches-country-CN"}],
        "phases": {"network": {"start": T0, "end": T0 + 1, "seconds": 1.0, "status": "ok"},
                   "sessions": {"start": T0 + 1, "end": T0 + 15, "seconds": 14.0,
                                "status": "ok"}},
        "infrastructure": {"10.77.0.1": "gateway (lab resolver)"},
        "guests": GUESTS, **extra}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A complete run: every file present, with user text that must be escaped."""
    run = tmp_path / "results" / "skype-2013-lab" / "20270115T120000Z-abcd"
    write_json(run / "manifest.json", _manifest(
        capture={"captured": 120, "received": 120, "dropped": 0, "complete": True},
        geoip=GEOIP))
    events = [{"session": "launch", "variant": v, "action": "launch", "start": T0 + 2,
               "end": T0 + 4, "outcome": "ok", "error": None,
               "screenshots": {"launch": f"screenshots/{v}/launch.png"}} for v in GUESTS]
    events.append({"session": "login", "variant": "regular", "action": "login",
                   "start": T0 + 5, "end": T0 + 7, "outcome": "ok", "error": None,
                   "screenshots": {"login": "screenshots/regular/login.png"}})
    events.append({"session": "about", "variant": "tom-zh", "action": "about",
                   "start": T0 + 8, "end": T0 + 9, "outcome": "failed",
                   "error": "image about-button.png not found",
                   "screenshots": {"about-failure": "screenshots/tom-zh/about-failure.png"}})
    (run / "events.jsonl").write_text(
        "".join(json.dumps(ev, ensure_ascii=False) + "\n" for ev in events), encoding="utf-8")
    for v, colour in zip(GUESTS, ("#2f6fdf", "#e07b00", "#8a4fd6"), strict=True):
        _screenshot(run / "screenshots" / v / "launch.png", f"{v} launch", colour)
    _screenshot(run / "screenshots" / "regular" / "login.png", "regular login", "#2f6fdf")
    _screenshot(run / "screenshots" / "tom-zh" / "about-failure.png", "about", "#8a4fd6")
    write_json(run / "analysis" / "endpoints.json", {
        "endpoints": ENDPOINTS, "places": PLACES, "variants": list(GUESTS), "geoip": GEOIP,
        "stats": {"frames_read": 120, "packets_read": 118}, "warnings": []})
    (run / "analysis" / "endpoints.csv").write_text("address,country\n")
    write_json(run / "analysis" / "evidence.json", {"canary": CANARY, "chats": [
        {"sender": "regular", "recipient": "tom-zh", "text": CHINESE, "start": T0 + 10,
         "end": T0 + 11, "has_canary": True, "endpoints": ["203.0.113.15"],
         "evidence": [
             {"kind": "timing", "variant": "tom-zh", "address": "203.0.113.15", "port": 80,
              "proto": "tcp", "time": T0 + 10.5, "strength": "weak",
              "detail": "a TCP burst 0.5 s after the message"},
             {"kind": "canary-plaintext", "variant": "tom-zh", "address": "203.0.113.15",
              "port": 80, "proto": "tcp", "time": T0 + 10.4, "strength": "strong",
              "detail": f"canary {CANARY!r} found in plaintext"}]},
        {"sender": "regular", "recipient": "tom-en", "text": HOSTILE, "start": T0 + 12,
         "end": T0 + 13, "has_canary": False, "endpoints": [], "evidence": []}]})
    write_json(run / "verdicts.json", {"verdicts": [
        {"id": "regular-never_reaches-country-CN", "variant": "regular", "kind": "never_reaches",
         "place": {"country": "CN"}, "status": "pass",
         "reason": "regular contacted 3 endpoints, none in CN (countries: BE, US)",
         "evidence": [{"kind": "absence", "strength": "complete-capture", "endpoints": 3,
                       "countries": ["BE", "US"]}], "geoip": GEOIP},
        {"id": "tom-en-reaches-country-CN", "variant": "tom-en", "kind": "reaches",
         "place": {"country": "CN"}, "status": "fail", "reason": "tom-en never reached CN",
         "evidence": [], "geoip": GEOIP},
        {"id": "tom-zh-reaches-country-CN", "variant": "tom-zh", "kind": "reaches",
         "place": {"country": "CN"}, "status": "inconclusive",
         "reason": "tom-zh's actions did not all succeed: about failed",
         "evidence": [{"kind": "flow", "strength": "observed", "address": "203.0.113.15",
                       "text": "203.0.113.15 (stands for 211.100.40.15): China"}],
         "geoip": GEOIP}]})
    (run / "capture").mkdir(parents=True, exist_ok=True)
    (run / "capture" / "tls.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"event": "clienthello", "client": "10.77.0.10", "server": "198.51.100.39",
         "port": 443, "sni": "srv.us.example", "time": T0 + 5},
        {"event": "tls_failed", "side": "client", "client": "10.77.0.10",
         "server": "198.51.100.39", "port": 443, "sni": "srv.us.example",
         "error": "unknown ca", "time": T0 + 5.1},
        {"event": "pinned", "client": "10.77.0.10", "server": "198.51.100.39", "port": 443,
         "sni": "srv.us.example", "time": T0 + 5.2}]) + "\n")
    return run


@pytest.fixture
def crashed_run(tmp_path: Path) -> Path:
    """A run that failed while the guests came up: a manifest and one event, nothing else."""
    run = tmp_path / "results" / "skype-2013-lab" / "20270115T130000Z-dead"
    write_json(run / "manifest.json", _manifest(
        status="failed", error="guest tom-zh: agent did not answer within 30 s",
        phases={"network": {"start": T0, "end": T0 + 1, "seconds": 1.0, "status": "ok"},
                "guests": {"start": T0 + 1, "end": T0 + 31, "seconds": 30.0,
                           "status": "failed", "error": "agent did not answer"}}))
    (run / "events.jsonl").write_text('{"variant": "regular", "action": "launch", '
                                      '"outcome": "ok"}\n{"truncated": \n')
    return run


HOSTILE_NAME = '<script>alert("dns")</script>.evil.example'
RESIDENCY_PLACES = {
    "198.51.100.10": _place("198.51.100.10", "DE", "Germany", "85.214.0.10"),
    "198.51.100.20": _place("198.51.100.20", "FR", "France", "51.15.0.20"),
    "198.51.100.30": _place("198.51.100.30", "US", "United States", "64.4.21.30"),
    "198.51.100.40": _place("198.51.100.40", "IE", "Ireland", "52.18.0.40", other="GB"),
}
RESIDENCY_PLACES["198.51.100.30"]["names"] = [HOSTILE_NAME]


@pytest.fixture
def residency_run(tmp_path: Path) -> Path:
    """A data-residency study: its expectations name Germany and France (nothing about China);
    one server's DNS name is hostile markup."""
    run = tmp_path / "results" / "eu-residency" / "20270201T090000Z-beef"
    guests = {"eu-app": "10.77.0.10", "eu-peer": "10.77.0.11"}
    expectations = [
        {"id": "eu-app-only_reaches-country-DE-country-FR", "variant": "eu-app",
         "kind": "only_reaches", "place": {}, "places": [{"country": "DE"}, {"country": "FR"}],
         "chat": None},
        {"id": "chat-eu-app-eu-peer-passes_through-country-DE", "variant": "eu-app",
         "kind": "passes_through", "place": {"country": "DE"}, "places": [{"country": "DE"}],
         "chat": {"from": "eu-app", "to": "eu-peer"}}]
    write_json(run / "manifest.json", _manifest(
        scenario={"name": "eu-residency", "path": "scenarios/eu-residency.yaml",
                  "sha256": "d" * 64}, expectations=expectations, guests=guests,
        capture={"captured": 80, "received": 80, "dropped": 0, "complete": True}, geoip=GEOIP))
    (run / "events.jsonl").write_text("".join(json.dumps(
        {"session": "launch", "variant": v, "action": "launch", "start": T0 + 2, "end": T0 + 3,
         "outcome": "ok", "error": None}) + "\n" for v in guests), encoding="utf-8")
    endpoints = [_ep("eu-app", "198.51.100.10", "tcp", 443, 5000),
                 _ep("eu-app", "198.51.100.20", "tcp", 443, 2000),
                 _ep("eu-app", "198.51.100.30", "tcp", 443, 700),
                 _ep("eu-peer", "198.51.100.40", "udp", 3478, 300),
                 _ep("eu-peer", "198.51.100.10", "tcp", 443, 1200)]
    write_json(run / "analysis" / "endpoints.json", {
        "endpoints": endpoints, "places": RESIDENCY_PLACES, "variants": list(guests),
        "geoip": GEOIP, "stats": {"frames_read": 80}, "warnings": []})
    write_json(run / "analysis" / "evidence.json", {"canary": CANARY, "chats": [
        {"sender": "eu-app", "recipient": "eu-peer", "text": "meet at 10 " + CANARY,
         "start": T0 + 10, "end": T0 + 11, "has_canary": True, "endpoints": ["198.51.100.10"],
         "evidence": [{"kind": "canary-tls", "variant": "eu-app", "address": "198.51.100.10",
                       "port": 443, "proto": "tcp", "time": T0 + 10.2, "strength": "strong",
                       "detail": f"canary {CANARY!r} found in decrypted TLS"}]}]})
    write_json(run / "verdicts.json", {"verdicts": [
        {"id": expectations[0]["id"], "variant": "eu-app", "kind": "only_reaches", "place": {},
         "status": "fail", "reason": "eu-app reached 198.51.100.30 (US), outside DE or FR",
         "evidence": [], "geoip": GEOIP, "chat": None},
        {"id": expectations[1]["id"], "variant": "eu-app", "kind": "passes_through",
         "place": {"country": "DE"}, "status": "pass", "reason": "the canary reached DE",
         "evidence": [], "geoip": GEOIP, "chat": {"from": "eu-app", "to": "eu-peer"}}]})
    return run
