"""The seed's download phase, by vantage, for real: the simulated internet's servers (the
real service, on the seed's map) in one namespace, a client in another whose source address
is the egress the server sees. A client placed in CN by the map (the address of one of the
map's CN rows) is redirected from www.skype.lab.example to skype.tom.lab.example and served
TOM's build; one placed elsewhere, or nowhere, gets www.skype's own build. The client runs
the agent's ``download`` step. Traffic stays inside the two namespaces this test makes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.lab import netns
from testbed.lab.internet_map import load_internet
from testbed.lab.services.sites import download_sha256
from testbed.lab.shell import sh

ROOT = Path(__file__).resolve().parents[2]
INTERNET = ROOT / "scenarios" / "lab" / "internet-2013.yaml"
URL = "http://www.skype.lab.example/SkypeSetup.exe"
WWW, TOM = "www.skype.lab.example", "skype.tom.lab.example"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="needs root and iproute2 (network namespaces)")

CLIENT_STEP = """
import json, sys
from testbed.agent.steps import StepContext, StepFailed, run_step
ctx = StepContext(images={}, spawn=lambda argv: 0)
try:
    outcome = run_step(ctx, {"download": sys.argv[1], "timeout": 10})
except StepFailed as e:
    outcome = f"failed: {e}"
print(json.dumps({"outcome": outcome, "detail": ctx.detail}))
"""


class Lab:
    def __init__(self, tmp: Path) -> None:
        tag = f"{os.getpid() % 0xFFFF:04x}"
        self.server, self.client = f"tbvt-{tag}-srv", f"tbvt-{tag}-cli"
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.internet = load_internet(INTERNET)
        self.sites = [s for s in self.internet.servers if s.role == "download"]

    def up(self) -> None:
        for ns in (self.server, self.client):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "link", "add", "s0", "netns", self.server, "type", "veth", "peer", "c0",
           "netns", self.client)
        for ns, dev in ((self.server, "s0"), (self.client, "c0")):
            sh("ip", "link", "set", dev, "up", ns=ns)
        for s in self.sites:
            sh("ip", "addr", "add", f"{s.address}/32", "dev", "lo", ns=self.server)
            sh("ip", "route", "add", f"{s.address}/32", "dev", "c0", ns=self.client)
        etc = netns.NETNS_ETC / self.client
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text("".join(f"{s.address} {s.name}\n" for s in self.sites))
        ready = self.tmp / "ready"
        self.proc = netns.spawn(self.server, [sys.executable, "-m",
                                              "testbed.lab.services.internet",
                                              "--log", str(self.tmp / "internet.jsonl"),
                                              "--workdir", str(self.tmp), "--ready", str(ready),
                                              "--map", str(INTERNET)],
                                self.tmp / "internet.log", dict(os.environ))
        netns.wait_for(ready, self.proc, "the simulated internet")

    def egress(self, address: str) -> None:
        """The client's one address (what the servers see as its egress)."""
        sh("ip", "addr", "flush", "dev", "c0", ns=self.client)
        sh("ip", "route", "flush", "table", "main", "dev", "c0", ns=self.client, check=False)
        sh("ip", "addr", "add", f"{address}/32", "dev", "c0", ns=self.client)
        for s in self.sites:
            sh("ip", "route", "add", f"{s.address}/32", "dev", "c0", "src", address,
               ns=self.client)
        sh("ip", "route", "replace", f"{address}/32", "dev", "s0", ns=self.server)

    def download(self, url: str) -> dict[str, object]:
        out = subprocess.run(["ip", "netns", "exec", self.client, sys.executable, "-c",
                              CLIENT_STEP, url], capture_output=True, text=True, timeout=60,
                             cwd=ROOT, check=True)
        result: dict[str, object] = json.loads(out.stdout)
        return result

    def down(self) -> None:
        netns.delete_all([self.server, self.client])
        if self.proc is not None:
            netns.reap([self.proc])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("vantage"))
    try:
        lab.up()
        yield lab
    finally:
        lab.down()
    assert not [ns for ns in netns.namespaces() if ns in (lab.server, lab.client)]
    assert not (netns.NETNS_ETC / lab.client).exists()


def cn_row() -> str:
    internet = load_internet(INTERNET)
    return next(s.address for s in internet.servers if s.country == "CN" and not s.role)


@pytest.mark.parametrize(("egress", "country", "redirected"), [
    (cn_row(), "CN", True),              # a vantage the map places in China
    ("198.51.100.36", "BE", False),      # placed in Belgium
    ("192.0.2.77", None, False),         # placed nowhere (the lab gateway's case)
])
def test_a_download_is_redirected_to_tom_from_china_only(lab: Lab, egress: str,
                                                         country: str | None,
                                                         redirected: bool) -> None:
    assert lab.internet.egress_country(egress) == country
    lab.egress(egress)
    got = lab.download(URL)
    detail = got["detail"]
    assert isinstance(detail, dict), got
    host = TOM if redirected else WWW
    assert detail["final_host"] == host, got
    assert detail["sha256"] == download_sha256(host, "/SkypeSetup.exe")
    assert [h["status"] for h in detail["chain"]] == ([302, 200] if redirected else [200])
    if redirected:
        assert detail["chain"][0]["location"] == f"http://{TOM}/SkypeSetup.exe"
        assert "after 1 redirect(s) from " + URL in str(got["outcome"])
    else:
        assert "(not redirected)" in str(got["outcome"])
    log = [json.loads(x) for x in (lab.tmp / "internet.jsonl").read_text().splitlines()]
    assert log[-1]["client"] == egress and log[-1]["host"] == host


def test_a_failed_download_is_a_step_failure_with_what_was_learned(lab: Lab) -> None:
    lab.egress("192.0.2.77")
    got = lab.download("http://nowhere.lab.example/x")
    assert str(got["outcome"]).startswith("failed: download failed: http://nowhere.lab.example/x"
                                          " could not be fetched")
    assert isinstance(got["detail"], dict) and got["detail"]["chain"] == []
