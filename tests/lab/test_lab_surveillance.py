"""The seed scenario at full fidelity: TOM's keyword surveillance catches a regular user's
chat, the control chat never touches China, the capture holds exactly what the servers got,
pinning is recorded, the call's media flows, and the About windows show three builds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import http, io
from PIL import Image

from testbed.analysis import read_packets

from .conftest import needs_root

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root]
MONITOR = "203.0.113.76"  # TOM's monitoring server (stands for 211.100.41.76, China)


def internet_log(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "lab" / "internet.jsonl").read_text().splitlines()]


def uploads(run: Path) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in internet_log(run)
            if r["server"] == MONITOR and r["path"] == "/monitor/upload"]


def test_keyword_message_uploaded_to_china_neutral_not(seed_run):
    run = seed_run["run"]
    canary = json.loads((run / "manifest.json").read_text())["canary"]
    upload, censored = uploads(run)
    assert censored["matched"] == ["法轮功"] and censored["to"] == "chen"
    assert canary in upload["text"] and "六四" in upload["text"]
    assert upload == upload | {"from": "alice", "to": "chen", "direction": "received",
                               "matched": ["六四"]}
    assert not any("lunch" in u["text"] for u in uploads(run))


def test_control_chat_never_touches_china(seed_run):
    run = seed_run["run"]
    assert not any(u["to"] == "dana" or u["from"] == "dana" for u in uploads(run))
    analysis = json.loads((run / "analysis" / "endpoints.json").read_text())
    control = {e["address"] for e in analysis["endpoints"] if e["variant"] == "control"}
    assert control and not any(analysis["places"][a]["country"] == "CN" for a in control)
    # both control messages were delivered through the relay
    sends = [json.loads(r["body"]) for r in internet_log(run) if r["path"] == "/chat/send"]
    assert sum(1 for s in sends if s.get("to") == "dana" and "text" in s) == 3
    # the censored word reached the relay for tom-zh too: the TOM client hid it on arrival
    assert any(s.get("to") == "chen" and "法轮功" in s.get("text", "") for s in sends)


def test_capture_and_flow_log_hold_the_same_uploads(seed_run):
    run = seed_run["run"]
    sent = [u["text"] for u in uploads(run)]
    with (run / "capture" / "flows.mitm").open("rb") as f:
        flows = [fl for fl in io.FlowReader(f).stream() if isinstance(fl, http.HTTPFlow)]
    in_flows = [json.loads(fl.request.content or b"{}")["text"] for fl in flows
                if fl.request.path == "/monitor/upload"]
    assert in_flows == sent
    # the pcap (ground truth) has the upload's bytes on the way to the monitoring server
    canary = json.loads((run / "manifest.json").read_text())["canary"].encode()
    raw = (run / "capture" / "gateway.pcap").read_bytes()
    assert raw.count(canary) >= 1
    to_monitor = [p for p in read_packets(run / "capture" / "gateway.pcap")
                  if p.dst == MONITOR and p.dport == 80]
    assert to_monitor, "no packet to the monitoring server in the capture"


def test_pinned_endpoint_is_recorded_and_passed_through(seed_run):
    run = seed_run["run"]
    log = [json.loads(x) for x in (run / "capture" / "tls.jsonl").read_text().splitlines()]
    guests = json.loads((run / "manifest.json").read_text())["guests"]
    outcomes = [r for r in log if r["event"] == "outcome"]
    pinned = {(r["client"], r["sni"]) for r in outcomes if r["outcome"] == "pinned"}
    assert pinned == {(guests[v], "srv-64-4-21-39.us.lab.example") for v in
                      ("regular", "control")}, "not exactly the regular builds' pinned host"
    assert {r["outcome"] for r in outcomes if r["outcome"] != "pinned"} == {"intercepted"}
    assert any(r["event"] == "clienthello" and r["passthrough"] and r.get("why") == "retry"
               and r["sni"] == "srv-64-4-21-39.us.lab.example" for r in log)
    snis = {r["sni"] for r in log if r["event"] == "clienthello"}
    assert "srv-211-100-40-15.cn.lab.example" in snis  # every SNI is logged


def test_call_media_flows_over_udp_through_the_media_relays(seed_run):
    run = seed_run["run"]
    analysis = json.loads((run / "analysis" / "endpoints.json").read_text())

    def udp_packets(variant: str, address: str) -> int:
        return sum(e["packets_out"] for e in analysis["endpoints"] if e["variant"] == variant
                   and e["address"] == address and e["proto"] == "udp")

    assert udp_packets("regular", "198.51.100.53") > 20   # Luxembourg media relay
    assert udp_packets("tom-en", "203.0.113.18") > 20     # tom-en's media relay in China
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    assert {e["action"] for e in events if e["session"] in ("call", "hang_up")} == {
        "call", "answer", "hang_up"}


def test_about_windows_show_three_builds_and_tom_zh_looks_different(seed_run):
    shots = {v: Image.open(seed_run["run"] / "screenshots" / v / "about.png").convert("RGB")
             for v in ("regular", "tom-en", "tom-zh")}
    assert shots["regular"].tobytes() != shots["tom-en"].tobytes()
    assert shots["tom-en"].tobytes() != shots["tom-zh"].tobytes()
    # the Chinese build has the older, "classic" look: its window background is not white
    assert shots["tom-zh"].getpixel((660, 60)) == (0xEE, 0xF3, 0xF8)
    assert shots["regular"].getpixel((660, 60)) == (255, 255, 255)
    for phase in ("call", "hang_up", "chat_send"):
        assert (seed_run["run"] / "screenshots" / "regular" / f"{phase}.png").exists()
    assert (seed_run["run"] / "screenshots" / "tom-en" / "incoming_call.png").exists()
    assert (seed_run["run"] / "screenshots" / "tom-zh" / "chat_wait.png").exists()


def test_chat_paths_show_the_tom_peer_sending_the_message_to_china(seed_run):
    run = seed_run["run"]
    chats = json.loads((run / "analysis" / "evidence.json").read_text())["chats"]
    places = json.loads((run / "analysis" / "endpoints.json").read_text())["places"]
    keyword = {c["recipient"]: c for c in chats if "六四" in c["text"]}
    tom = keyword["tom-zh"]
    assert MONITOR in tom["endpoints"]
    strong = {(e["kind"], e["variant"], e["address"]) for e in tom["evidence"]
              if e["strength"] == "strong"}
    assert ("canary-plaintext", "tom-zh", MONITOR) in strong
    assert ("canary-decrypted", "tom-zh", MONITOR) in strong
    assert places[MONITOR]["country"] == "CN"
    control = keyword["control"]
    assert control["endpoints"] and all(places[a]["country"] != "CN"
                                        for a in control["endpoints"])
    assert all(not c["evidence"] for c in chats if not c["has_canary"])
    # the censored message was uploaded too: its own path reaches the monitoring server
    censored = next(c for c in chats if c["recipient"] == "tom-zh" and "法轮功" in c["text"])
    assert MONITOR in censored["endpoints"]


def test_endpoints_carry_names_and_every_databases_view(seed_run):
    places = json.loads((seed_run["run"] / "analysis" / "endpoints.json").read_text())["places"]
    monitor = places[MONITOR]
    assert monitor["names"] == ["srv-211-100-41-76.cn.lab.example"]
    assert {v["via"] for v in monitor["views"]} == {"address", "stands_for"}
    countries = [v for v in monitor["views"] if v["country"]]
    assert len(countries) == 3 and not monitor["disagree"]  # lab map, DB-IP, GeoLite2
    assert any(v["organization"] for v in monitor["views"])  # the bundled AS database
    assert places["239.255.255.250"]["views"] == []
    assert any(p["disagree"] for p in places.values())  # the seed's non-China rows moved
