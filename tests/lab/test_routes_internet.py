"""``route: internet`` for real, against the test's own "ISP" namespace (its veth is the
uplink; never this machine's): NAT out of the uplink, every DNS query and answer logged in the
run, the vantage as the ISP sees it; fail-closed when the uplink goes down mid-run; nothing of
the run left on the host afterwards, also after SIGKILL + ``testbed lab cleanup --tag``."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.lab.uplink import objects as host_objects

from .conftest import (
    ROOT,
    TESTBED,
    copy_scenarios,
    needs_root,
    run_objects,
    run_tag,
    wait_for_phase,
)
from .isp import EXIT, RESOLVER, Isp

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="needs dnsmasq")]


def _scenario(folder: Path, isp: Isp) -> Path:
    scenarios = copy_scenarios(folder)
    data = yaml.safe_load((scenarios / "routes-lab.yaml").read_text())
    data["scenario"] = "routes-internet"
    out = data["clients"]["cn"]
    out["route"] = {"internet": {"uplink": isp.uplink, "resolver": RESOLVER,
                                 "gateway": isp.isp_ip,
                                 "echo": "http://srv-64-4-34-81.us.lab.example/ip"}}
    conf = scenarios / "lab" / "exits" / "isp-exit.conf"
    conf.write_text((scenarios / "lab" / "exits" / "cn-shanghai.conf").read_text()
                    .replace("203.0.113.80:51820", f"{EXIT}:51820"))
    tun = dict(out, account={"user": "tun"},
               route={"vpn": {"config": "lab/exits/isp-exit.conf", "resolver": RESOLVER,
                              "uplink": isp.uplink, "gateway": isp.isp_ip}})
    data["clients"] = {"home": data["clients"]["home"], "out": out, "tun": tun}
    data["sessions"] = [
        {"name": "launch", "parallel": True, "steps": [
            {"variant": v, "action": "launch"} for v in ("home", "out", "tun")]},
        {"name": "login", "parallel": True, "steps": [
            {"variant": "out", "action": "login"}, {"variant": "tun", "action": "login"}]},
        {"name": "linger", "steps": [{"variant": "out", "action": "chat_absent", "from": "home"},
                                     {"variant": "out", "action": "chat_absent",
                                      "from": "home"}]}]
    data["expectations"] = [{"variant": v, k: {"country": c}} for v in ("out", "tun")
                            for k, c in (("reaches", "CN"), ("never_reaches", "JP"))]
    path = scenarios / "routes-internet.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def _forwarding(link: str) -> str:
    return Path(f"/proc/sys/net/ipv4/conf/{link}/forwarding").read_text().strip()


@pytest.fixture(scope="module")
def internet_run(tmp_path_factory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("internet")
    isp = Isp(copy_scenarios(folder / "map") / "lab" / "internet-routes.yaml", folder).start(
        ROOT / "scenarios" / "lab" / "exits" / "cn-shanghai-exit.conf")
    try:
        before = _forwarding(isp.uplink)
        scenario = _scenario(folder, isp)
        results = folder / "results"
        proc = subprocess.Popen([*TESTBED, "run", str(scenario), "--results", str(results)],
                                cwd=scenario.parent, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            run = wait_for_phase(results, "sessions", timeout=90)
            during = host_objects(run_tag(run))
            deadline = time.monotonic() + 90
            while '"action": "login"' not in _read(run / "events.jsonl"):
                assert proc.poll() is None and time.monotonic() < deadline, "login never ended"
                time.sleep(0.2)
            down = time.time()
            subprocess.run(["ip", "link", "set", isp.uplink, "down"], check=True)
            out, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        yield {"run": run, "down": down, "isp": isp.packets(), "stdout": out, "stderr": err,
               "forwarding": (before, _forwarding(isp.uplink)), "during": during,
               "manifest": json.loads((run / "manifest.json").read_text())}
    finally:
        isp.stop()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _verdicts(run: Path) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in json.loads((run / "verdicts.json").read_text())["verdicts"]}


def test_the_run_went_out_through_the_isp(internet_run):
    m = internet_run["manifest"]
    assert m["status"] == "complete", m.get("error")
    assert internet_run["during"], "the host side of the uplink existed during the run"
    isp = internet_run["isp"]
    assert any(re.search(r"IP 100\.127\.\d+\.1\.\d+ > 203\.0\.113\.\d+\.443", line)
               for _, line in isp), "the guest's connections reached the ISP, NATed"


@pytest.mark.parametrize("key,want", [("route", "internet"), ("resolver", RESOLVER),
                                      ("egress_from",
                                       "echo http://srv-64-4-34-81.us.lab.example/ip")])
def test_the_vantage_is_the_isps_view(internet_run, key, want):
    assert internet_run["manifest"]["vantage"]["out"][key] == want


def test_the_egress_is_the_address_the_isp_saw(internet_run):
    egress = internet_run["manifest"]["vantage"]["out"]["egress"]
    assert re.fullmatch(r"100\.127\.\d+\.1", egress)


def test_every_query_and_answer_is_in_the_run(internet_run):
    log = internet_run["run"] / "lab" / "routes" / "up0-dns.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    asked = [r for r in records if r.get("client", "").startswith("10.77.0.")]
    assert asked, "the guest's queries are logged"
    assert any(r["name"].endswith(".cn.lab.example") and r["rcode"] == "NOERROR"
               and r["answers"] for r in asked)


def test_no_guest_packet_reached_the_isp_unNATed_or_after_the_uplink_died(internet_run):
    isp, down = internet_run["isp"], internet_run["down"]
    assert not [line for _, line in isp if re.search(r"IP (10\.77|100\.(6[4-9]|[7-9]\d|1[01]\d|"
                                                     r"12[0-6]))\.\d+\.\d+\.\d+", line)]
    arrived = [line for t, line in isp if t > down + 0.2 and re.search(r"eth0\s+In ", line)]
    assert arrived == [], "nothing arrives from the host once the uplink is down"


def test_the_run_says_when_the_uplink_died(internet_run):
    events = [json.loads(line) for line in _read(internet_run["run"] / "events.jsonl")
              .splitlines()]
    downs = {e["variant"]: e for e in events if e["action"] == "route-down"}
    assert set(downs) == {"out", "tun"}, "both routes out of the uplink died with it"
    for e in downs.values():
        assert internet_run["down"] - 3 <= e["start"] <= internet_run["down"] + 1
        assert "is down" in e["error"]


@pytest.mark.parametrize("claim,status,via", [
    ("out-reaches-country-CN", "pass", "via internet tbti"),
    ("out-never_reaches-country-JP", "inconclusive", "via internet tbti"),
    ("tun-reaches-country-CN", "pass", "via vpn isp-exit.conf"),
    ("tun-never_reaches-country-JP", "inconclusive", "via vpn isp-exit.conf")])
def test_claims_after_the_uplink_died(internet_run, claim, status, via):
    v = _verdicts(internet_run["run"])[claim]
    assert v["status"] == status, v["reason"]
    assert via in v["reason"]


def test_a_tunnel_goes_out_of_the_uplink_too(internet_run):
    """The vpn route's WireGuard packets left by the uplink (NATed) to the ISP's exit, and
    its vantage is the tunnel's endpoint."""
    assert any(re.search(rf"IP 100\.127\.\d+\.1\.\d+ > {re.escape(EXIT)}\.51820: UDP", line)
               for _, line in internet_run["isp"])
    v = internet_run["manifest"]["vantage"]["tun"]
    assert (v["route"], v["egress"], v["egress_from"]) == (
        "vpn", EXIT, "tunnel config (peer endpoint)")


def test_the_host_is_as_before(internet_run):
    tag = run_tag(internet_run["run"])
    assert run_objects(tag) == []
    before, after = internet_run["forwarding"]
    assert before == after


def test_sigkill_then_cleanup_gives_the_host_back(tmp_path):
    isp = Isp(copy_scenarios(tmp_path / "map") / "lab" / "internet-routes.yaml",
              tmp_path).start(ROOT / "scenarios" / "lab" / "exits" / "cn-shanghai-exit.conf")
    try:
        before = _forwarding(isp.uplink)
        scenario = _scenario(tmp_path, isp)
        results = tmp_path / "results"
        proc = subprocess.Popen([*TESTBED, "run", str(scenario), "--results", str(results)],
                                cwd=scenario.parent, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        run = wait_for_phase(results, "sessions", timeout=90)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        tag = run_tag(run)
        assert host_objects(tag), "SIGKILL leaves the host side of the uplink"
        assert _forwarding(isp.uplink) == "1"
        out = subprocess.run([*TESTBED, "lab", "cleanup", "--tag", tag], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert f"nftables table inet tb{tag}_route" in out.stdout
        assert run_objects(tag) == []
        assert _forwarding(isp.uplink) == before
    finally:
        isp.stop()
