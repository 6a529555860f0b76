"""The vagrant provider end to end on a real VM (Debian 12 under qemu, no KVM needed).

scenarios/vagrant-linux-lab.yaml runs three times through ``run_scenario``. The first is
interrupted (Ctrl-C) after ``vagrant up``, and its half-made machine must go; the next brings
the machine up, provisions it and saves its clean snapshot; the last restores it. In each
complete run the agent is reached over the management network, a headless probe produces
traffic on the experiment network, the gateway captures it and the results place its
endpoints. Then ``testbed vagrant destroy``, and nothing of it remains. Before any guest
starts, the test checks for itself that the networks are isolated. Timings are printed
(``pytest -s``) and recorded as junit properties.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from testbed._errors import VmError
from testbed.orchestrator.run import run_scenario
from testbed.scenario import load_scenario
from testbed.vagrant.machinery import Machinery
from testbed.vagrant.machines import Names
from testbed.vagrant.provider import CLEAN, machines_dir, vagrant_env
from tests.lab.conftest import processes_mentioning
from tests.vagrant.conftest import ROOT, names, needs_vms, virsh

pytestmark = [pytest.mark.slow, pytest.mark.e2e, needs_vms]
SCENARIO = ROOT / "scenarios" / "vagrant-linux-lab.yaml"
APP_LOG = "/var/lib/testbed-agent/app-0.log"


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout


class Watch:
    """The run's progress lines, with checks made at the moment a phase starts."""

    def __init__(self, n: Names, project: Path, log: Path) -> None:
        self.n, self.project, self.log, self.lines, self.run_dir = n, project, log, [], None
        self.checks: dict[str, float] = {}
        self.tokens: list[str] = []
        self.interrupt = ""  # Ctrl-C when a progress line contains this
        self.quiet = False
        self.first = True

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)
        if self.interrupt and self.interrupt in line:
            self.interrupt, self.quiet = "", True  # once; no checks while it unwinds
            raise KeyboardInterrupt(f"test: Ctrl-C at {line.strip()!r}")
        if self.quiet:
            return
        if line.startswith("run ") and " (lab tag " in line:  # "run PATH (lab tag T)"
            self.run_dir = Path(line[len("run "):line.rindex(" (lab tag ")])
        elif line.endswith("] guests"):
            self.isolated_before_guests()
        elif line.endswith("] sessions"):
            self.guest_is_clean()
        elif line.endswith("] capture-stop"):
            self.probe_ran()

    def guest(self, command: str) -> str:
        m = Machinery(self.project, vagrant_env(), self.log)  # (outside the results)
        return m.run("probe", command)

    def isolated_before_guests(self) -> None:
        n = self.n
        assert not [d for d in names("list") if d.startswith(n.prefix)], "a guest is running"
        net = ET.fromstring(virsh("net-dumpxml", n.network))
        assert net.find("forward") is None, ET.tostring(net, "unicode")   # isolated network
        assert n.network in names("net-list")
        assert sh("ip", "-o", "addr", "show", "dev", n.bridge).strip() == ""  # no host address
        ports = sh("ip", "-o", "link", "show", "master", n.bridge)
        assert [p.split(":")[1].strip().split("@")[0] for p in ports.splitlines()] == [n.uplink]
        assert n.bridge not in sh("ip", "route", "get", "10.77.0.10")
        tag = json.loads((self.run_dir / "manifest.json").read_text())["lab"]["tag"]
        # the gateway's only way on is the simulated internet, which has no way out
        assert sh("ip", "netns", "exec", f"tbed-{tag}-net", "ip", "route", "show",
                  "default").strip() == ""
        self.checks["isolated"] = time.time()

    def guest_is_clean(self) -> None:
        if self.first:
            return
        # restored: the previous run's probe log (written after the snapshot) is gone
        assert "GONE" in self.guest(f"test -e {APP_LOG} && echo THERE || echo GONE")
        self.checks["restored"] = time.time()

    def probe_ran(self) -> None:
        log = self.guest(f"cat {APP_LOG}")
        assert "cn.lab.example/: HTTP 200" in log and "lu.lab.example/: HTTP 200" in log, log
        assert "bytes back from" in log, log  # UDP echo
        # the VM's port on the experiment bridge is isolated (guests reach only the gateway)
        ports = sh("ip", "-o", "link", "show", "master", self.n.bridge)
        taps = [p.split(":")[1].strip().split("@")[0] for p in ports.splitlines()
                if self.n.uplink not in p]
        assert len(taps) == 1, ports
        assert "isolated on" in sh("bridge", "-d", "link", "show", "dev", taps[0])
        env = self.guest("sudo cat /etc/testbed/agent.env")
        self.tokens.append(env.split("TESTBED_AGENT_TOKEN=")[1].split()[0])
        # a failing command is an error with its own output (python-vagrant's ssh is not)
        with pytest.raises(VmError, match="ssh probe"):
            self.guest("echo to-stderr >&2; exit 3")
        self.checks["probe"] = time.time()


def run_once(scenario, results: Path, watch: Watch, record_property, label: str):
    t0 = time.monotonic()
    outcome = run_scenario(scenario, results, progress=watch)
    seconds = round(time.monotonic() - t0, 1)
    record_property(f"seconds_{label}", seconds)
    print(f"[vagrant-e2e] {label}: {seconds} s", flush=True)
    manifest = json.loads((outcome.run.path / "manifest.json").read_text())
    assert outcome.status == "complete", manifest.get("error")
    assert {"isolated", "probe"} <= watch.checks.keys(), watch.checks
    assert manifest["capture"]["complete"] and manifest["capture"]["dropped"] == 0
    with (outcome.run.path / "analysis" / "endpoints.csv").open() as f:
        rows = list(csv.DictReader(f))
    placed = {(r["address"], r["country"]) for r in rows if r.get("probe") == "x"}
    assert placed == {("203.0.113.15", "CN"), ("198.51.100.16", "LU")}, rows
    assert [(v.id, v.status) for v in outcome.verdicts] == [
        ("probe-reaches-country-CN", "pass"), ("probe-reaches-country-LU", "pass"),
        ("probe-only-where-it-was-sent", "pass")], [v.reason for v in outcome.verdicts]
    assert (outcome.run.path / "report.html").is_file()
    return outcome, manifest


def test_vagrant_provider_end_to_end(tmp_path, monkeypatch, libvirtd, vagrant_home,
                                     record_property):
    monkeypatch.setenv("VAGRANT_HOME", str(vagrant_home))
    monkeypatch.setenv("TESTBED_LIBVIRT_DRIVER", os.environ.get("TESTBED_LIBVIRT_DRIVER",
                                                                "qemu"))
    scenario = load_scenario(SCENARIO)
    results = tmp_path / "results"
    project = machines_dir(results, scenario)
    n = Names.of(project)
    watch = Watch(n, project, tmp_path / "test-ssh.log")
    secrets_seen: list[str] = []
    try:
        # Ctrl-C in a first run, once the machine is up but before its clean snapshot: the
        # half-made machine goes, so that the next run starts afresh
        watch.interrupt = "up and provisioned"
        with pytest.raises(KeyboardInterrupt):
            run_scenario(scenario, results, progress=watch)
        watch.quiet = False
        assert any("its first run did not finish: the machine was removed" in line
                   for line in watch.lines), watch.lines
        assert not [d for d in names("list", "--all") if d.startswith(n.prefix)]
        assert not Path(f"/sys/class/net/{n.bridge}").exists()
        assert not (project / ".vagrant" / "machines" / "probe").exists()
        interrupted = json.loads((watch.run_dir / "manifest.json").read_text())
        assert interrupted["status"] == "interrupted"
        assert f"tbed-{interrupted['lab']['tag']}-gw" not in sh("ip", "netns", "list")
        watch.lines, watch.checks = [], {}
        _, first = run_once(scenario, results, watch, record_property, "first_run")
        assert any("first run: vagrant up" in line for line in watch.lines)
        assert CLEAN in virsh("snapshot-list", f"{n.prefix}probe", "--name")
        assert virsh("domstate", f"{n.prefix}probe").strip() == "shut off"  # powered off
        watch.first, watch.checks = False, {}  # (the tokens are kept)
        _, second = run_once(scenario, results, watch, record_property, "second_run")
        assert any("restoring the clean snapshot" in line for line in watch.lines)
        assert "restored" in watch.checks
        record_property("seconds_guest_restore", second["phases"]["guests"]["seconds"])
        record_property("seconds_guest_first_up", first["phases"]["guests"]["seconds"])
        status = subprocess.run([sys.executable, "-m", "testbed", "vagrant", "status",
                                 str(SCENARIO), "--results", str(results)],
                                capture_output=True, text=True, timeout=120)
        assert f"{n.prefix}probe: shut off; snapshots: {CLEAN}" in status.stdout, status
        # a fresh token per run, in no file of the runs or of the machines' folder
        assert len(set(watch.tokens)) == 2 and all(len(t) >= 32 for t in watch.tokens)
        for path in results.rglob("*"):
            if path.is_file() and any(t.encode() in path.read_bytes() for t in watch.tokens):
                secrets_seen.append(str(path))
        assert not secrets_seen, secrets_seen
    finally:
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "testbed", "vagrant", "destroy",
                              str(SCENARIO), "--results", str(results)], capture_output=True,
                             text=True, timeout=600, env={**os.environ})
        print(out.stdout + out.stderr, flush=True)
        record_property("seconds_destroy", round(time.monotonic() - t0, 1))
    assert out.returncode == 0, out.stderr
    assert f"removed domain {n.prefix}probe" in out.stdout or "vagrant machines" in out.stdout
    # nothing of it remains: VM, snapshot, volume, pool, network, bridge, namespace, process
    assert not [d for d in names("list", "--all") if d.startswith(n.prefix)]
    assert n.network not in names("net-list", "--all")
    assert n.pool not in names("pool-list", "--all")
    for pool in names("pool-list"):
        assert n.prefix not in virsh("vol-list", pool), pool
    assert not Path(f"/var/lib/libvirt/images/{n.pool}").exists()
    assert not [p for p in processes_mentioning(f"guest={n.prefix}") if "qemu" in p]
    for link in (n.bridge, n.uplink, n.network):
        assert not Path(f"/sys/class/net/{link}").exists(), link
    tags = [json.loads(m.read_text())["lab"]["tag"] for m in results.glob("*/*/manifest.json")]
    assert len(tags) == 3
    for tag in tags:
        assert f"tbed-{tag}-gw" not in sh("ip", "netns", "list")
    assert not processes_mentioning(str(results)), processes_mentioning(str(results))
    assert not project.exists()
