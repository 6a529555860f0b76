"""A run on real addresses is analysed without a lab map: the recorded seed run with every lab
server's address replaced by the real address it stands for (in the pcap's IP headers and DNS
answers, the flow file and the TLS log) and the map removed. Offline: no packet is sent. Its
endpoints are placed by the bundled databases alone, with country, AS number and organisation
and their provenance, and the seed's verdicts come out as for the simulated run."""

from __future__ import annotations

import json
import shutil
import socket
import struct
from pathlib import Path

import pytest
import yaml

from testbed.cli import main
from testbed.run import files as f
from tests.support import analysed_seed

ORG_EXPECTATIONS = [  # the manifest's form of two scenario expectations on organisations
    {"id": "tom-en-reaches-chinanet", "variant": "tom-en", "kind": "reaches",
     "place": {"organization": "Chinanet"}, "places": [{"organization": "Chinanet"}],
     "chat": None, "min_strength": "", "description": ""},
    {"id": "regular-never-reaches-chinanet", "variant": "regular", "kind": "never_reaches",
     "place": {"organization": "chinanet"}, "places": [{"organization": "chinanet"}],
     "chat": None, "min_strength": "", "description": ""},
]


def asn_expectation(variant: str, kind: str, asn: int) -> dict[str, object]:
    """The manifest's form of a scenario expectation on an AS number (`asn:` place)."""
    return {"id": f"{variant}-{kind}-as{asn}", "variant": variant, "kind": kind,
            "place": {"asn": asn}, "places": [{"asn": asn}], "chat": None,
            "min_strength": "", "description": ""}


# (variant, kind, AS number, the verdict on real addresses): tom-en reaches Chinanet's
# AS4134 (110.81.238.33) and regular does not; nobody reaches AS64496 (documentation ASN).
ASN_CASES = [
    ("tom-en", "reaches", 4134, "pass"), ("regular", "never_reaches", 4134, "pass"),
    ("regular", "reaches", 4134, "fail"), ("tom-en", "never_reaches", 4134, "fail"),
    ("tom-en", "reaches", 64496, "fail"), ("regular", "never_reaches", 64496, "pass"),
]


def rewrite_pcap(path: Path, real: dict[bytes, bytes]) -> int:
    """Replace lab server addresses in IPv4 headers and DNS A answers; return packets changed."""
    data = bytearray(path.read_bytes())
    magic, linktype = struct.unpack_from("<I", data)[0], struct.unpack_from("<I", data, 20)[0]
    assert (magic, linktype) == (0xA1B2C3D4, 1)  # little-endian pcap of Ethernet frames
    pos, changed = 24, 0
    while pos + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        frame = pos + 16
        off, ethertype = frame + 14, struct.unpack_from(">H", data, frame + 12)[0]
        while ethertype in (0x8100, 0x88A8):
            ethertype, off = struct.unpack_from(">H", data, off + 2)[0], off + 4
        if ethertype == 0x0800:
            hit = False
            for a in (off + 12, off + 16):
                old = bytes(data[a:a + 4])
                if old in real:
                    data[a:a + 4], hit = real[old], True
            ihl, proto = (data[off] & 15) * 4, data[off + 9]
            udp = off + ihl
            if proto == 17 and 53 in struct.unpack_from(">HH", data, udp):
                body = bytes(data[udp + 8:frame + caplen])
                for old, new in real.items():
                    if old in body:
                        body, hit = body.replace(old, new), True
                data[udp + 8:frame + caplen] = body
            changed += hit
        pos = frame + caplen
    path.write_bytes(bytes(data))
    return changed


def rewrite_flows(path: Path, real: dict[str, str]) -> int:
    from mitmproxy import io

    with path.open("rb") as fh:
        flows = list(io.FlowReader(fh).stream())
    n = 0
    for flow in flows:
        conn = flow.server_conn  # type: ignore[attr-defined]
        for attr in ("address", "peername"):
            value = getattr(conn, attr, None)
            if value and value[0] in real:
                setattr(conn, attr, (real[value[0]], *value[1:]))
                n += 1
    with path.open("wb") as fh:
        w = io.FlowWriter(fh)
        for flow in flows:
            w.add(flow)
    return n


@pytest.fixture(scope="module")
def internet_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the analysed simulated seed run, its analysed real-address twin)."""
    seed = analysed_seed(tmp_path_factory)
    run = tmp_path_factory.mktemp("internet") / "skype-2013-lab" / "internet-run"
    shutil.copytree(seed, run)
    lab = yaml.safe_load((run / f.INTERNET).read_text())
    real = {s["address"]: s["stands_for"] for s in lab["servers"]}
    assert rewrite_pcap(run / "capture" / "gateway.pcap",
                        {socket.inet_aton(a): socket.inet_aton(r) for a, r in real.items()}) > 100
    assert rewrite_flows(run / "capture" / "flows.mitm", real) > 10
    tls = run / "capture" / "tls.jsonl"
    lines = [json.loads(x) for x in tls.read_text().splitlines()]
    tls.write_text("".join(json.dumps(x | {"server": real.get(x.get("server"), x.get("server"))})
                           + "\n" for x in lines))
    (run / f.INTERNET).unlink()
    shutil.rmtree(run / "analysis")
    manifest = run / f.MANIFEST
    doc = json.loads(manifest.read_text())
    doc["expectations"] += ORG_EXPECTATIONS + [asn_expectation(v, k, a)
                                               for v, k, a, _ in ASN_CASES]
    manifest.write_text(json.dumps(doc))
    assert main(["analyze", str(run)]) == 1  # 1: ASN_CASES holds expectations that fail
    return seed, run


def verdicts(run: Path) -> dict[str, dict[str, object]]:
    return {v["id"]: v for v in json.loads((run / f.VERDICTS).read_text())["verdicts"]}


def test_the_seed_verdicts_are_the_same_on_real_addresses(internet_run: tuple[Path, Path]) -> None:
    seed, run = internet_run
    lab, real = verdicts(seed), verdicts(run)
    assert {k: v["status"] for k, v in lab.items()} == \
        {k: v["status"] for k, v in real.items() if k in lab}
    assert set(lab) < set(real)
    assert "211.100.40.15" in str(real["tom-en-reaches-country-CN"]) or \
        "211.100." in str(real["tom-en-reaches-country-CN"])


@pytest.mark.parametrize("claim", ["tom-en-reaches-chinanet", "regular-never-reaches-chinanet"])
def test_organisation_places_work_on_real_addresses(internet_run: tuple[Path, Path],
                                                    claim: str) -> None:
    _, run = internet_run
    v = verdicts(run)[claim]
    assert v["status"] == "pass", v


@pytest.mark.parametrize(("variant", "kind", "asn", "status"), ASN_CASES)
def test_asn_places_pass_and_fail_on_real_addresses(internet_run: tuple[Path, Path],
                                                    variant: str, kind: str, asn: int,
                                                    status: str) -> None:
    _, run = internet_run
    v = verdicts(run)[f"{variant}-{kind}-as{asn}"]
    assert v["status"] == status, (
        f"{variant} {kind.replace('_', ' ')} AS{asn}: expected {status}, got {v['status']}: {v}")


def test_endpoints_carry_country_organisation_and_provenance(
        internet_run: tuple[Path, Path]) -> None:
    _, run = internet_run
    doc = json.loads((run / f.ENDPOINTS).read_text())
    places = doc["places"]
    chinanet = places["110.81.238.33"]
    assert chinanet["country"] == "CN" and chinanet["organization"] == "Chinanet"
    assert chinanet["asn"] == 4134
    assert chinanet["database"].startswith("dbip-city-lite-latest.mmdb")
    assert not chinanet.get("stands_for")
    types = [g["database_type"] for g in doc["geoip"]]
    assert types == ["DBIP-City-Lite", "GeoLite2-City", "GeoLite2-ASN-compatible"]
    asn = doc["geoip"][2]
    assert Path(asn["file"]).name == "GeoLite2-ASN-ip-location-db-2.3.2026061719.mmdb"
    assert asn["build_date"].startswith("2026-06-17") and len(asn["sha256"]) == 64
    assert "RouteViews" in asn["attribution"] and "DB-IP" in asn["attribution"]
    csv = (run / f.ENDPOINTS_CSV).read_text()
    assert "110.81.238.33,CN,China,,", csv
    assert "Chinanet" in csv and ",4134,Chinanet," in csv
