"""A run directory made by hand (no lab needed): manifest, events, the seed's internet, and a
small capture of the guests talking to the lab's servers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

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


