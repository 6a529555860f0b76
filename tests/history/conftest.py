"""Hand-made run directories (no lab needed): manifest, analysis/endpoints.json, verdicts.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from testbed.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0

# address -> place, as analysis/endpoints.json writes them
PLACES: dict[str, dict[str, Any]] = {
    "198.51.100.10": {"country": "US", "country_name": "United States",
                      "stands_for": "157.55.56.150", "names": ["srv-157-55-56-150.us.lab.example"],
                      "asn": 8075, "organization": "Microsoft"},
    "198.51.100.16": {"country": "LU", "country_name": "Luxembourg",
                      "stands_for": "78.141.179.16", "names": ["srv-78-141-179-16.lu.lab.example"],
                      "asn": None, "organization": None},
    "198.51.100.50": {"country": "GB", "country_name": "United Kingdom",
                      "stands_for": "81.2.69.50", "names": [], "asn": None, "organization": None},
    "203.0.113.15": {"country": "CN", "country_name": "China", "stands_for": "211.100.40.15",
                     "names": ["srv-211-100-40-15.cn.lab.example"], "asn": 4808,
                     "organization": "China Unicom Beijing"},
    "203.0.113.18": {"country": "CN", "country_name": "China", "stands_for": "218.6.20.18",
                     "names": [], "asn": None, "organization": None},
    "239.255.255.250": {"special": "multicast", "country": None, "stands_for": None,
                        "names": [], "asn": None, "organization": None},
    "10.77.0.1": {"special": "private", "country": None, "stands_for": None, "names": [],
                  "asn": None, "organization": None},
}

BASE_ENDPOINTS = {
    "regular": ["198.51.100.10", "198.51.100.16", "239.255.255.250"],
    "tom-en": ["198.51.100.10", "203.0.113.15", "239.255.255.250"],
}
PASS_REASONS = {
    "regular-never_reaches-country-CN": ("regular", "never_reaches",
                                         "regular contacted 3 endpoints, none in CN"),
    "tom-en-reaches-country-CN": ("tom-en", "reaches", "tom-en reached CN: 203.0.113.15"),
}


def verdicts_for(endpoints: dict[str, list[str]]) -> dict[str, tuple[str, str]]:
    """What the verdicts would say for these endpoints: id -> (status, reason)."""
    out = {}
    for vid, (variant, kind, reason) in PASS_REASONS.items():
        cn = [a for a in endpoints.get(variant, []) if PLACES[a].get("country") == "CN"]
        if kind == "never_reaches":
            out[vid] = ("fail", f"{variant} reached CN: {cn[0]}") if cn else ("pass", reason)
        else:
            out[vid] = ("pass", reason) if cn else ("fail", f"{variant} never reached CN")
    return out


def make_run(results: Path, run_id: str, *, scenario: str = "skype-2013-lab",
             started: float = T0, status: str = "complete",
             endpoints: dict[str, list[str]] | None = None,
             verdicts: dict[str, tuple[str, str]] | None = None,
             analysed: bool = True, sha256: str = "a" * 64) -> Path:
    """Write ``results/<scenario>/<run_id>/`` by hand; verdicts default to what the endpoints
    imply (see verdicts_for)."""
    endpoints = BASE_ENDPOINTS if endpoints is None else endpoints
    verdicts = verdicts_for(endpoints) if verdicts is None else verdicts
    path = results / scenario / run_id
    (path / "analysis").mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({
        "run_id": run_id, "status": status, "started": started, "finished": started + 20,
        "scenario": {"name": scenario, "path": f"/x/{scenario}.yaml", "sha256": sha256},
        "guests": {v: f"10.77.0.{10 + i}" for i, v in enumerate(endpoints)},
        "geoip": [],
    }))
    if analysed:
        rows = [{"variant": v, "address": a, "proto": "udp" if a.startswith("239") else "tcp",
                 "port": 1900 if a.startswith("239") else 443, "packets_out": 3,
                 "packets_in": 2, "bytes_out": 300, "bytes_in": 200, "first_seen": started + 1,
                 "last_seen": started + 2}
                for v, addrs in endpoints.items() for a in addrs]
        used = {a for addrs in endpoints.values() for a in addrs}
        (path / "analysis" / "endpoints.json").write_text(json.dumps({
            "endpoints": rows,
            "places": {a: {"database": "lab", **PLACES[a]} for a in sorted(used)},
        }))
    (path / "verdicts.json").write_text(json.dumps({"verdicts": [
        {"id": vid, "variant": vid.split("-never")[0].split("-reaches")[0],
         "kind": "reaches", "place": {"country": "CN"}, "status": st, "reason": reason,
         "evidence": []} for vid, (st, reason) in verdicts.items()]}))
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    r = tmp_path / "results"
    r.mkdir()
    return r


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    """A copy of the shipped scenarios/ (one nightly scenario, app profiles, lab data)."""
    return copy_seed_scenarios(tmp_path / "scenarios")


SEED_NIGHTLY = "skype-2013-lab.yaml"


def copy_seed_scenarios(dst: Path) -> Path:
    """The shipped scenarios/ with the seed's as the only nightly scenario: the real-app
    scenarios (nightly too) are left out, so these tests see one scenario, as they assume."""

    def others(folder: str, names: list[str]) -> list[str]:
        if Path(folder) != ROOT / "scenarios":
            return []
        return [n for n in names if n.endswith(".yaml") and n != SEED_NIGHTLY
                and "\nnightly: true" in (Path(folder) / n).read_text(encoding="utf-8")]

    shutil.copytree(ROOT / "scenarios", dst, ignore=others)
    return dst


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run a history command as the CLI would: (exit code, stdout, stderr)."""
    code = cli_main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err
