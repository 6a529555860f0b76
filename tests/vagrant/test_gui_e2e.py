"""The GUI study on a real VM, end to end (Debian 12 under qemu, no KVM needed).

scenarios/skype-2013-vm.yaml — the reference client's regular build in a VM, its TOM peer a
lab guest on the same gateway — runs three times through ``run_scenario``. The first is
interrupted (Ctrl-C) after ``vagrant up``, and its half-made machine must go; the next brings
the machine up, waits for the agent's launcher in its desktop session and saves the clean
snapshot; the last reverts it. In each complete run the agent, started by the VM's desktop
session, drives the client's GUI (sign in, About, a call, chats with the canary), the
screenshots come from inside the VM, the gateway captures it all and the verdicts pass as in
the lab. Then ``testbed vagrant destroy``, and nothing of it remains. Before any guest
starts, the test checks for itself that the networks are isolated. Timings per phase and per
guest step are printed (``pytest -s``) and recorded as junit properties.
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
from PIL import Image

import testbed.vagrant.provider as provider_module
from testbed._errors import VmError
from testbed.orchestrator.run import run_scenario
from testbed.scenario import load_scenario
from testbed.vagrant.machinery import Machinery
from testbed.vagrant.machines import Names
from testbed.vagrant.provider import CLEAN, machines_dir, vagrant_env
from tests.lab.conftest import processes_mentioning
from tests.vagrant.conftest import ROOT, names, needs_vms, virsh

pytestmark = [pytest.mark.slow, pytest.mark.e2e, needs_vms]
SCENARIO = ROOT / "scenarios" / "skype-2013-vm.yaml"
APP_LOG = "/home/vagrant/agent/app-0.log"  # the reference client's log (the agent's workdir)
PHASES = ("launch", "login", "about", "call", "hang_up", "chat_send")  # screenshots of the VM


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
            self.gui_ran()

    def guest(self, command: str) -> str:
        m = Machinery(self.project, vagrant_env(), self.log)  # (outside the results)
        return m.run("regular", command)

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
        # restored: the previous run's client log (written after the snapshot) is gone
        assert "GONE" in self.guest(f"test -e {APP_LOG} && echo THERE || echo GONE")
        self.checks["restored"] = time.time()

    def gui_ran(self) -> None:
        # the client ran in the VM's desktop session, started by the agent the session started
        procs = self.guest("ps -eo user,args")
        assert any(p.startswith("vagrant") and "testbed.lab.refclient" in p
                   for p in procs.splitlines()), procs
        assert any(p.startswith("vagrant") and "testbed.agent.launch" in p
                   for p in procs.splitlines()), procs
        assert "Xvfb :0 -screen 0 1024x768x24" in procs and "openbox" in procs, procs
        assert self.guest(f"test -s {APP_LOG} && echo written") == "written\n"
        # the run's environment was consumed: no token left on the guest's disk
        assert "GONE" in self.guest("test -e ~/.config/testbed/agent.env && echo THERE || "
                                    "echo GONE")
        # the VM's port on the experiment bridge is isolated (guests reach only the gateway)
        ports = sh("ip", "-o", "link", "show", "master", self.n.bridge)
        taps = [p.split(":")[1].strip().split("@")[0] for p in ports.splitlines()
                if self.n.uplink not in p]
        assert len(taps) == 1, ports
        assert "isolated on" in sh("bridge", "-d", "link", "show", "dev", taps[0])
        # a failing command is an error with its own output (python-vagrant's ssh is not)
        with pytest.raises(VmError, match="ssh regular"):
            self.guest("echo to-stderr >&2; exit 3")
        self.checks["gui"] = time.time()


def run_once(scenario, results: Path, watch: Watch, record_property, label: str):
    t0 = time.monotonic()
    outcome = run_scenario(scenario, results, progress=watch)
    seconds = round(time.monotonic() - t0, 1)
    record_property(f"seconds_{label}", seconds)
    manifest = json.loads((outcome.run.path / "manifest.json").read_text())
    phases = {k: v.get("seconds") for k, v in manifest.get("phases", {}).items()}
    timings = outcome.run.path / "vagrant" / "timings.json"
    guest = json.loads(timings.read_text()) if timings.exists() else {}
    print(f"[vagrant-gui-e2e] {label}: {seconds} s; phases {phases}; VM {guest}", flush=True)
    for phase, value in phases.items():
        record_property(f"{label}_{phase}", value)
    for step, value in guest.get("regular", {}).items():
        record_property(f"{label}_guest_{step}", value)
    assert outcome.status == "complete", manifest.get("error")
    assert {"isolated", "gui"} <= watch.checks.keys(), watch.checks
    assert manifest["capture"]["complete"] and manifest["capture"]["dropped"] == 0
    # screenshots of the reference client from inside the VM, at the VM's fixed resolution
    shots = outcome.run.path / "screenshots" / "regular"
    for phase in PHASES:
        with Image.open(shots / f"{phase}.png") as img:
            assert img.size == (1024, 768), (phase, img.size)
    with (outcome.run.path / "analysis" / "endpoints.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["country"] for r in rows if r.get("tom-zh") == "x"} >= {"CN"}
    assert "CN" not in {r["country"] for r in rows if r.get("regular") == "x"}
    verdicts = {v.id: (v.status, v.reason) for v in outcome.verdicts}
    assert {k: s for k, (s, _) in verdicts.items()} == {
        "regular-never_reaches-country-CN": "pass", "tom-zh-reaches-country-CN": "pass",
        "chat-with-tom-user-reaches-china": "pass",
        "tom-user-never-sees-censored-word": "pass"}, verdicts
    assert "canary" in verdicts["chat-with-tom-user-reaches-china"][1]
    assert (outcome.run.path / "report.html").is_file()
    return outcome, manifest


def test_gui_study_on_a_vm_end_to_end(tmp_path, monkeypatch, libvirtd, vagrant_home,
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
    real_token = provider_module.secrets.token_urlsafe

    def token(nbytes: int) -> str:  # the pool's tokens, seen by the test (the real ones)
        value = real_token(nbytes)
        watch.tokens.append(value)
        return value

    monkeypatch.setattr(provider_module.secrets, "token_urlsafe", token)
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
        assert not (project / ".vagrant" / "machines" / "regular").exists()
        interrupted = json.loads((watch.run_dir / "manifest.json").read_text())
        assert interrupted["status"] == "interrupted"
        assert f"tbed-{interrupted['lab']['tag']}-gw" not in sh("ip", "netns", "list")
        watch.lines, watch.checks, watch.tokens = [], {}, []
        _, first = run_once(scenario, results, watch, record_property, "first_run")
        assert any("first run: vagrant up" in line for line in watch.lines)
        assert CLEAN in virsh("snapshot-list", f"{n.prefix}regular", "--name")
        assert virsh("domstate", f"{n.prefix}regular").strip() == "shut off"  # powered off
        watch.first, watch.checks = False, {}  # (the tokens are kept)
        _, second = run_once(scenario, results, watch, record_property, "second_run")
        assert any("restored the clean snapshot" in line for line in watch.lines)
        assert "restored" in watch.checks
        # the restore path: one revert, no vagrant CLI, one ssh; the agent's overhead above
        # the guest's own resume (the revert) is measured, and bounded loosely here (CI's load)
        restore = json.loads((second_run(results) / "vagrant" / "timings.json").read_text())
        overhead = restore["regular"]["total"] - restore["regular"]["revert"]
        record_property("seconds_restore_overhead", round(overhead, 2))
        assert overhead < 30, restore
        log = (second_run(results) / "vagrant" / "vagrant.log").read_text()
        assert "$ vagrant" not in log, log  # vagrant's CLI did not start once
        status = subprocess.run([sys.executable, "-m", "testbed", "vagrant", "status",
                                 str(SCENARIO), "--results", str(results)],
                                capture_output=True, text=True, timeout=120)
        assert f"{n.prefix}regular: shut off; snapshots: {CLEAN}" in status.stdout, status
        # a fresh token per run, in no file of the runs or of the machines' folder
        # (the lab guest's token too: every guest's is fresh and kept out of the results)
        assert len(set(watch.tokens)) == len(watch.tokens) >= 2
        assert all(len(t) >= 32 for t in watch.tokens)
        assert first and second
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
    assert f"removed domain {n.prefix}regular" in out.stdout or "vagrant machines" in out.stdout
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


def second_run(results: Path) -> Path:
    """The newest run's folder."""
    return sorted((results / "skype-2013-vm").glob("2*"))[-1]
