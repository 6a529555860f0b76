"""Routes out of the lab, for real: one run with variants on ``simulated``, ``vpn`` (a real
WireGuard tunnel to the lab's VPN exit placed in CN) and ``drop``; fail-closed when the tunnel
dies mid-run, seen from the simulated internet's own capture (the "ISP"); nothing left behind
after success, failure, Ctrl-C and SIGKILL + ``testbed lab cleanup --tag``."""

from __future__ import annotations

import html as htmllib
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

from testbed.lab.netns import pids_in

from .conftest import (
    ROOT,
    TESTBED,
    copy_scenarios,
    needs_root,
    processes_mentioning,
    run_dirs,
    run_objects,
    run_tag,
    wait_for_phase,
)

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(shutil.which("wireguard-go") is None
                                 or shutil.which("dnsmasq") is None,
                                 reason="needs wireguard-go, wireguard-tools and dnsmasq "
                                        "(make setup installs them)")]

EXIT = "203.0.113.80"
GUESTS = "10.77.0.0/24"
CONFIG = ROOT / "scenarios" / "lab" / "exits" / "cn-shanghai.conf"


def _private_key(path: Path) -> str:
    return re.search(r"PrivateKey\s*=\s*(\S+)", path.read_text()).group(1)  # type: ignore


def _run(scenario: Path, results: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TESTBED, "run", str(scenario), "--results", str(results)],
                          cwd=scenario.parent, capture_output=True, text=True, timeout=timeout)


def _leftovers(run: Path, tag: str | None = None) -> list[str]:
    tag = tag or run_tag(run)
    left = run_objects(tag) + processes_mentioning(str(run))
    left += [f"process {p}" for p in processes_mentioning(f"wireguard-go -f tb{tag}")]
    left += [f"socket {s}" for s in Path("/var/run/wireguard").glob(f"tb{tag}*")]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    left += [f"nftables {t}" for t in re.findall(rf"tb{tag}_\w+", tables)]
    return left


@pytest.fixture(scope="module")
def routes_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    results = tmp_path_factory.mktemp("routes")
    proc = _run(ROOT / "scenarios" / "routes-lab.yaml", results)
    (run,) = run_dirs(results)
    return {"proc": proc, "run": run,
            "manifest": json.loads((run / "manifest.json").read_text()),
            "verdicts": {v["id"]: v for v in
                         json.loads((run / "verdicts.json").read_text())["verdicts"]}}


def test_the_run_completes_with_three_routes(routes_run):
    proc, m = routes_run["proc"], routes_run["manifest"]
    assert proc.returncode in (0, 1), proc.stderr
    assert m["status"] == "complete", m.get("error")
    assert {v: x["route"] for v, x in m["vantage"].items()} == {
        "home": "simulated", "cn": "vpn", "offline": "drop"}


@pytest.mark.parametrize("key,want", [
    ("route", "vpn"), ("label", "vpn cn-shanghai.conf"), ("egress", EXIT),
    ("egress_from", "echo http://srv-64-4-34-81.us.lab.example/ip"), ("country", "CN"),
    ("resolver", "10.99.0.1")])
def test_the_vpn_variant_is_measured_from_the_cn_exit(routes_run, key, want):
    assert routes_run["manifest"]["vantage"]["cn"][key] == want


@pytest.mark.parametrize("variant,sentence", [
    ("home", "home: measured from the lab's simulated internet"),
    ("cn", "cn: measured from CN, via vpn cn-shanghai.conf"),
    ("offline", "offline: measured with route drop (nothing left the lab)")])
def test_the_report_header_says_where_each_variant_was_measured_from(routes_run, variant,
                                                                     sentence):
    html = htmllib.unescape((routes_run["run"] / "report.html").read_text())
    header = html[html.index("Measured from"):html.index("</dl>", html.index("Measured from"))]
    assert sentence in header


@pytest.mark.parametrize("claim,status,words", [
    ("cn-reaches-country-CN", "pass", "(measured from CN, via vpn cn-shanghai.conf)"),
    ("cn-never_reaches-country-JP", "pass", "(measured from CN, via vpn cn-shanghai.conf)"),
    ("home-reaches-country-CN", "pass", "(measured from the lab's simulated internet)"),
    ("offline-never_reaches-country-CN", "inconclusive", "route is drop: nothing could leave")])
def test_verdict_sentences_carry_the_vantage(routes_run, claim, status, words):
    v = routes_run["verdicts"][claim]
    assert v["status"] == status, v["reason"]
    assert words in v["reason"]


def test_the_vpn_variants_names_were_asked_through_the_tunnel(routes_run):
    """Its DNS went to the exit's real resolver (dnsmasq), through the tunnel."""
    run = routes_run["run"]
    dns = (run / "lab" / "exits" / "cn-exit.lab.example" / "dnsmasq.log").read_text()
    assert re.search(r"query\[A\] srv-[\w.-]+ from 10\.99\.0\.2", dns)


def test_the_drop_variant_asked_names_and_nothing_left(routes_run):
    run = routes_run["run"]
    out = subprocess.run(["tcpdump", "-nn", "-r", str(run / "capture" / "gateway.pcap"),
                          "src host 10.77.0.12"], capture_output=True, text=True).stdout
    assert out.strip(), "the capture shows what the drop variant tried"


def test_no_secret_in_the_run(routes_run):
    key = _private_key(CONFIG)
    run = routes_run["run"]
    for f in run.rglob("*"):
        if f.is_file() and f.stat().st_size < 50_000_000:
            assert key.encode() not in f.read_bytes(), f"the tunnel's private key is in {f}"
    assert key not in routes_run["proc"].stdout + routes_run["proc"].stderr


def test_nothing_is_left_after_success(routes_run):
    assert _leftovers(routes_run["run"]) == []


# -- fail-closed ----------------------------------------------------------------------------

def _fail_closed_scenario(folder: Path) -> Path:
    scenarios = copy_scenarios(folder)
    data = yaml.safe_load((scenarios / "routes-lab.yaml").read_text())
    data["clients"] = {"cn": data["clients"]["cn"]}
    data["sessions"] = [
        {"name": "launch", "steps": [{"variant": "cn", "action": "launch"}]},
        {"name": "login", "steps": [{"variant": "cn", "action": "login"}]},
        {"name": "linger", "steps": [  # presence goes on: traffic after the tunnel died
            {"variant": "cn", "action": "chat_absent", "from": "cn"},
            {"variant": "cn", "action": "chat_absent", "from": "cn"}]}]
    data["expectations"] = [{"variant": "cn", "reaches": {"country": "CN"}},
                            {"variant": "cn", "never_reaches": {"country": "JP"}}]
    path = scenarios / "routes-fail-closed.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


class Tap:
    """tcpdump in one of the run's namespaces, from outside the run (the test's own eyes)."""

    def __init__(self, ns: str, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", "any", "-nn",
                                      "-U", "-w", str(out)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def stop(self) -> list[tuple[float, str]]:
        """(time, line) of every packet it saw."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        text = subprocess.run(["tcpdump", "-tt", "-nn", "-r", str(self.out)],
                              capture_output=True, text=True).stdout
        return [(float(line.split()[0]), line) for line in text.splitlines()
                if line and line[0].isdigit()]


def _kill_tunnel(ns: str) -> float:
    for pid in pids_in(ns):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"wireguard-go"):
            t = time.time()
            subprocess.run(["kill", "-9", str(pid)], check=True)
            return t
    raise AssertionError(f"no wireguard-go in {ns}")


@pytest.fixture(scope="module", params=["gateway", "exit"])
def killed_run(request, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A run whose tunnel is killed (its gateway end, or the exit's) right after login."""
    folder = tmp_path_factory.mktemp(f"fail-closed-{request.param}")
    scenario = _fail_closed_scenario(folder)
    results = folder / "results"
    proc = subprocess.Popen([*TESTBED, "run", str(scenario), "--results", str(results)],
                            cwd=scenario.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        run = wait_for_phase(results, "capture-start")
        tag = run_tag(run)
        isp = Tap(f"tbed-{tag}-net", folder / "isp.pcap")
        exit_tap = Tap(f"tbed-{tag}-x0", folder / "exit.pcap")
        deadline = time.monotonic() + 90
        while '"action": "login"' not in _read(run / "events.jsonl"):
            assert proc.poll() is None and time.monotonic() < deadline, "login never ended"
            time.sleep(0.2)
        killed = _kill_tunnel(f"tbed-{tag}-{'gw' if request.param == 'gateway' else 'x0'}")
        out, err = proc.communicate(timeout=180)
        yield {"run": run, "killed": killed, "isp": isp.stop(), "exit": exit_tap.stop(),
               "stdout": out, "stderr": err, "side": request.param}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _events(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _read(run / "events.jsonl").splitlines() if line]


def test_the_run_says_when_the_route_died(killed_run):
    downs = [e for e in _events(killed_run["run"]) if e["action"] == "route-down"]
    assert len(downs) == 1, downs
    assert killed_run["killed"] - 3 <= downs[0]["start"] <= killed_run["killed"] + 1
    assert "route vpn cn-shanghai.conf died at" in downs[0]["error"]
    assert "died at" in killed_run["stdout"] + killed_run["stderr"]
    assert "Route died: cn: route vpn cn-shanghai.conf died at" in \
        htmllib.unescape((killed_run["run"] / "report.html").read_text())


def test_no_guest_packet_reached_the_isp_after_the_route_died(killed_run):
    isp = killed_run["isp"]
    assert isp, "the ISP's capture saw the run's traffic"
    after = [line for t, line in isp if t >= killed_run["killed"] and
             re.search(r"IP 10\.77\.0\.\d+\.", line)]
    assert after == [], f"{len(after)} guest packets leaked: {after[:3]}"


def test_the_exit_saw_the_tunnel_before_and_no_guest_traffic_after(killed_run):
    exit_lines = killed_run["exit"]
    before = [line for t, line in exit_lines if t < killed_run["killed"]
              and "IP 10.99.0.2." in line]
    after = [line for t, line in exit_lines if t >= killed_run["killed"] + 0.5
             and ("IP 10.99.0.2." in line or re.search(r"IP 10\.77\.0\.\d+\.", line))]
    assert before, "the guest's traffic came out of the tunnel before the kill"
    assert after == [], f"traffic of the guest at the exit after the kill: {after[:3]}"


def test_the_guest_kept_trying_after_the_route_died(killed_run):
    run, killed = killed_run["run"], killed_run["killed"]
    text = subprocess.run(["tcpdump", "-tt", "-nn", "-r", str(run / "capture" / "gateway.pcap"),
                           "src host 10.77.0.10"], capture_output=True, text=True).stdout
    assert any(float(line.split()[0]) > killed + 1 for line in text.splitlines() if line), \
        "no traffic of the guest after the kill: the test shows nothing"


@pytest.mark.parametrize("claim,status,words", [
    ("cn-never_reaches-country-JP", "inconclusive", "route vpn cn-shanghai.conf died at"),
    ("cn-reaches-country-CN", "pass", "cn reached CN")])
def test_claims_on_traffic_after_the_death_are_inconclusive(killed_run, claim, status, words):
    verdicts = {v["id"]: v for v in
                json.loads((killed_run["run"] / "verdicts.json").read_text())["verdicts"]}
    assert verdicts[claim]["status"] == status, verdicts[claim]["reason"]
    assert words in verdicts[claim]["reason"]


def test_nothing_is_left_after_a_dead_route(killed_run):
    assert _leftovers(killed_run["run"]) == []


# -- leftovers after failure, Ctrl-C and SIGKILL --------------------------------------------

def test_a_route_that_cannot_carry_fails_before_guests_and_leaves_nothing(tmp_path):
    scenarios = copy_scenarios(tmp_path)
    conf = scenarios / "lab" / "exits" / "nowhere.conf"
    conf.write_text(CONFIG.read_text().replace(f"{EXIT}:51820", "203.0.113.81:51820"))
    data = yaml.safe_load((scenarios / "routes-lab.yaml").read_text())
    data["clients"]["cn"]["route"] = {"vpn": {"config": "lab/exits/nowhere.conf"}}
    path = scenarios / "routes-nowhere.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    proc = _run(path, tmp_path / "results")
    (run,) = run_dirs(tmp_path / "results")
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "failed"
    assert "route vpn nowhere.conf: the resolver 10.99.0.1 does not answer through the " \
           "tunnel" in m["error"]
    assert "guests" not in m["phases"], "no guest may start on a route that is not ready"
    assert "Traceback" not in proc.stderr
    tag = re.search(r"\(lab tag ([0-9a-f]{4})\)", proc.stdout + proc.stderr)
    assert tag, proc.stdout
    assert _leftovers(run, tag.group(1)) == []


def _started(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """A run of one guest on the vpn route, in its sessions."""
    scenario = _fail_closed_scenario(tmp_path)
    results = tmp_path / "results"
    proc = subprocess.Popen([*TESTBED, "run", str(scenario), "--results", str(results)],
                            cwd=scenario.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    run = wait_for_phase(results, "sessions")
    tag = run_tag(run)
    assert any(f"tbed-{tag}-x0" in o for o in run_objects(tag)), "the exit should be up"
    return proc, run


def test_ctrl_c_leaves_no_tunnel(tmp_path):
    proc, run = _started(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert _leftovers(run) == []


def test_sigkill_then_cleanup_leaves_no_tunnel(tmp_path):
    proc, run = _started(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    tag = run_tag(run)
    assert processes_mentioning(f"wireguard-go -f tb{tag}"), "SIGKILL leaves the tunnels"
    out = subprocess.run([*TESTBED, "lab", "cleanup", "--tag", tag], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"netns tbed-{tag}-x0" in out.stdout
    assert _leftovers(run) == []
