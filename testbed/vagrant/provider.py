"""Guest pool ``vagrant``: one real VM per variant, behind the same gateway as the lab's.

    VM (one per variant)                 host                      the gateway
    ┌─────────────────────┐  mgmt   ┌────────────────────┐       ┌──────────────────────────┐
    │ eth0 DHCP ──────────┼─────────┤ tbm<key>: isolated │       │ br0 10.77.0.1             │
    │ agent (systemd)     │         │ libvirt network    │  veth │ tcpdump, mitmdump,        │
    │ eth1 10.77.0.1x ────┼─────────┤ tbx<key>: bridge,  ├───────┤ lab resolver; the        │
    │ default via .1      │  exp    │ no address         │       │ simulated internet behind │
    └─────────────────────┘         └────────────────────┘       └──────────────────────────┘

The gateway, its capture and the internet behind it are the run's one gateway
(``testbed.provider.gateway``), so a run on VMs and a run on the lab are captured and
analysed the same way; the pool plugs its bridge's uplink into it. The machines live in a
folder that outlives runs (``<results>/.vagrant/<scenario>``): the first run brings each one
up, provisions it and saves its clean snapshot; every run starts by restoring that snapshot.
Before each run the guest gets the clock, the gateway's CA, the agent's code and a fresh
token over ssh; the token never appears on a command line or in a log. After the run the
machines are powered off; ``testbed vagrant destroy`` removes them and everything libvirt
holds for them.
"""

from __future__ import annotations

import functools
import io
import os
import secrets
import shutil
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import testbed
from testbed._errors import LabError, ProviderUnavailable, VmError
from testbed.agent.client import AGENT_PORT, AgentClient
from testbed.lab import netns, owners
from testbed.provider.abstracts import Gateway, GuestHandle, GuestPool
from testbed.scenario import Scenario
from testbed.vagrant import libvirt
from testbed.vagrant.machinery import NOT_CREATED, RUNNING, Machinery
from testbed.vagrant.machines import Names, machine_list, write_machine_list
from testbed.vagrant.preflight import scenario_checks

CLEAN = "testbed-clean"
VMS = Path(testbed.__file__).resolve().parent.parent / "vms"
UPLOAD = "/tmp/testbed-upload"


def machines_dir(results: Path, scenario: Scenario) -> Path:
    return results.resolve() / ".vagrant" / scenario.name


def vagrant_env() -> dict[str, str]:
    return {**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1", "VAGRANT_NO_COLOR": "1",
            "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1", "VAGRANT_DEFAULT_PROVIDER": "libvirt",
            "VAGRANT_SUPPRESS_PLUGIN_WARNINGS": "1"}


def libvirt_driver() -> str:
    """``kvm``, or ``qemu`` (software emulation) without /dev/kvm or when
    ``TESTBED_LIBVIRT_DRIVER=qemu`` says KVM cannot run guests here."""
    return os.environ.get("TESTBED_LIBVIRT_DRIVER") or (
        "kvm" if os.path.exists("/dev/kvm") else "qemu")


def remove_bridge(names: Names) -> list[str]:
    """Delete the experiment bridge and its uplink where they exist; returns what went."""
    gone = []
    for link in (names.uplink, names.bridge):
        if netns.sh("ip", "link", "show", link, check=False).strip():
            netns.sh("ip", "link", "delete", link, check=False)
            gone.append(f"link {link}")
    return gone


SETUP_SCRIPTS = ("run-setup.sh", "trust-ca.sh")  # vms/provision/linux: run before every run


@functools.cache
def _code_archive() -> bytes:
    """The agent's code (the testbed package, without caches) and the per-run set-up; made
    once per process, sent to every guest."""
    buf = io.BytesIO()
    package = Path(testbed.__file__).resolve().parent
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(package, "testbed", filter=lambda t: None if "__pycache__" in t.name else t)
        for script in SETUP_SCRIPTS:
            tar.add(VMS / "provision" / "linux" / script, script)
    return buf.getvalue()


def unavailable(scenario: Scenario) -> list[str]:
    """Why ``scenario`` cannot run on VMs here (checked before anything is started)."""
    return [c.line() for c in scenario_checks(scenario) if not c.ok]


class VagrantPool(GuestPool):
    name = "vagrant"
    start_timeout = 3600.0  # a first run installs and provisions under software emulation

    def __init__(self, workdir: Path, gateway: Gateway, scenario: Scenario,
                 project: Path, progress: Callable[[str], None] = print) -> None:
        self.gateway = gateway
        self.workdir, self.scenario, self.project = workdir, scenario, project
        self.progress = progress
        self.names = Names.of(project)
        self.machinery = Machinery(project, vagrant_env(), workdir / "vagrant" / "vagrant.log")
        self.spec: dict[str, Any] = {}
        self.running: list[str] = []
        self.unfinished: list[str] = []  # first runs without their clean snapshot yet

    # -- the network ----------------------------------------------------------------------
    def prepare(self) -> None:
        self._bridge()
        self.project.mkdir(parents=True, exist_ok=True)
        libvirt.ensure_pool(self.names)
        wanted = (self.scenario.vagrant or {}).get("management_network")
        management = libvirt.ensure_network(self.names, str(wanted) if wanted else None)
        problems = self.isolation_problems()
        if problems:
            raise LabError("the VMs' networks are not isolated; nothing was started: "
                           + "; ".join(problems))
        self.spec = machine_list(self.scenario, self.names, management, libvirt_driver())
        shutil.copyfile(VMS / "Vagrantfile", self.project / "Vagrantfile")
        shutil.copytree(VMS / "provision", self.project / "provision", dirs_exist_ok=True)
        write_machine_list(self.spec, self.project / "machines.json")
        shutil.copyfile(self.project / "machines.json", self.workdir / "vagrant" / "machines.json")
        self.machinery.env["TESTBED_MACHINES"] = str(self.project / "machines.json")

    def _bridge(self) -> None:
        """The experiment bridge: VM ports and the uplink into the gateway's br0. No address,
        no iptables on bridged frames (br_netfilter), no IPv6: the host takes no part."""
        sh, n = netns.sh, self.names
        remove_bridge(n)  # left by a run that was killed
        owners.claim(netns.tag_of(n.bridge) or n.bridge, self.workdir)  # for lab cleanup
        sh("ip", "link", "add", n.bridge, "type", "bridge", "nf_call_iptables", "0",
           "nf_call_ip6tables", "0", "nf_call_arptables", "0")
        sh("sysctl", "-qw", f"net.ipv6.conf.{n.bridge}.disable_ipv6=1")
        self.gateway.plug("x0", n.uplink, None, isolated=False)
        sh("sysctl", "-qw", f"net.ipv6.conf.{n.uplink}.disable_ipv6=1")
        sh("ip", "link", "set", n.uplink, "master", n.bridge, "up")
        sh("ip", "link", "set", n.bridge, "up")

    def isolation_problems(self) -> list[str]:
        """Why the guests could reach anything but the gateway (empty: they cannot)."""
        n = self.names
        problems = libvirt.isolation_problems(n.network)
        addresses = netns.sh("ip", "-o", "addr", "show", "dev", n.bridge, check=False)
        if addresses.strip():
            problems.append(f"bridge {n.bridge} has an address: {addresses.strip()}")
        ports = netns.sh("ip", "-o", "link", "show", "master", n.bridge, check=False)
        others = [line.split(":")[1].strip().split("@")[0] for line in ports.splitlines()
                  if line.strip() and n.uplink not in line and "vnet" not in line]
        if others:
            problems.append(f"bridge {n.bridge} has other ports: {', '.join(others)}")
        return problems

    # -- guests ---------------------------------------------------------------------------
    def start_guest(self, variant: str, index: int, trust: Path | None) -> GuestHandle:
        guest = next(g for g in self.spec["guests"] if g["name"] == variant)
        if guest["os"] != "linux":
            raise ProviderUnavailable(f"{variant}: the per-run set-up of {guest['os']} guests "
                                      "(over WinRM) is not built yet; Linux guests only")
        m, t0 = self.machinery, time.monotonic()

        def say(what: str) -> None:
            self.progress(f"  {variant}: {what} [{time.monotonic() - t0:.0f} s]")

        if m.state(variant) == NOT_CREATED:
            say("first run: vagrant up and provision (minutes under software emulation)")
            self.running.append(variant)
            self.unfinished.append(variant)  # removed at teardown unless its snapshot is saved
            m.up(variant, provider="libvirt", provision=True)
            say(f"up and provisioned; saving the clean snapshot {CLEAN}")
            m.snapshot_save(variant, CLEAN)
            self.unfinished.remove(variant)
        else:
            if CLEAN not in m.snapshots(variant):
                raise VmError(f"{variant} has no snapshot {CLEAN}: remove the machines "
                              f"(testbed vagrant destroy {self.scenario.path}) and run again")
            say(f"restoring the clean snapshot {CLEAN}")
            self.running.append(variant)
            m.snapshot_restore(variant, CLEAN)
            if m.state(variant) != RUNNING:
                m.up(variant, provider="libvirt", provision=False)
        self._isolate_port(variant)
        host = m.ssh_config(variant).get("HostName", "")
        say(f"running at {host}; set-up: clock, CA, agent")
        token = secrets.token_urlsafe(24)
        m.run(variant, f"rm -rf {UPLOAD} && mkdir -p {UPLOAD} && tar -x -C {UPLOAD}",
              input=_code_archive())
        stdin = ((trust.read_text() if trust else "") + "\n--\n"
                 f"TESTBED_AGENT_TOKEN={token}\nAGENT_LISTEN={host}:{AGENT_PORT}\n")
        m.run(variant, f"sudo sh {UPLOAD}/run-setup.sh {int(time.time())} {UPLOAD}",
              input=stdin.encode())
        say("set up; waiting for the agent")
        agent = AgentClient(f"http://{host}:{AGENT_PORT}", token)
        agent.wait_ready(timeout=120)
        say("agent ready")
        home = self.workdir / "guests" / variant
        home.mkdir(parents=True, exist_ok=True)
        return GuestHandle(variant=variant, address=str(guest["experiment_ip"]), agent=agent,
                           workdir=home, env={"python": "python3"})

    def _isolate_port(self, variant: str) -> None:
        """Guests reach the gateway only, not each other: their bridge ports are isolated."""
        out = libvirt.virsh("domiflist", f"{self.names.prefix}{variant}")
        for line in out.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2] == self.names.bridge:
                netns.sh("bridge", "link", "set", "dev", fields[0], "isolated", "on")

    def _remove(self, variant: str) -> None:
        """vagrant destroy, then libvirt for what vagrant did not know of yet (an interrupted
        ``vagrant up`` can leave a domain its state folder does not name)."""
        try:
            self.machinery.destroy(variant)
        except VmError as e:
            self.progress(f"  {variant}: {e}")
        libvirt.remove_domain(self.names, f"{self.names.prefix}{variant}")
        shutil.rmtree(self.project / ".vagrant" / "machines" / variant, ignore_errors=True)
        self.progress(f"  {variant}: its first run did not finish: the machine was removed")

    # -- teardown -------------------------------------------------------------------------
    def teardown(self) -> None:
        """Power the machines off (their snapshot is the next run's start) and remove the
        bridge (its uplink into the gateway goes with it)."""
        for variant in self.unfinished:  # no half-made machine stays to trip the next run
            self._remove(variant)
        existing = libvirt.domains(self.names) if self.running else []
        for variant in self.running:  # a hard power-off: the snapshot is restored anyway
            if f"{self.names.prefix}{variant}" not in existing:
                continue  # vagrant up failed before the domain existed, or it was removed
            try:
                libvirt.virsh("destroy", f"{self.names.prefix}{variant}")
            except VmError as e:
                self.progress(f"  {variant}: could not power off: {e}")
        self.running.clear()
        self.unfinished.clear()
        remove_bridge(self.names)
        owners.release(netns.tag_of(self.names.bridge) or self.names.bridge)


def destroy(scenario: Scenario, project: Path, progress: Callable[[str], None] = print,
            ) -> list[str]:
    """Remove a scenario's machines, their snapshots, disks, pool and network, and their
    folder; returns what went. Works on half-made sets (a killed first run) too."""
    names, gone = Names.of(project), []
    if (project / "machines.json").exists() and (project / ".vagrant").exists():
        # vagrant-libvirt checks that the experiment bridge exists before doing anything
        netns.sh("ip", "link", "add", names.bridge, "type", "bridge", check=False)
        env = {**vagrant_env(), "TESTBED_MACHINES": str(project / "machines.json")}
        machinery = Machinery(project, env, project / "destroy.log")
        for variant in scenario.clients:
            try:
                for snap in machinery.snapshots(variant):
                    machinery.snapshot_delete(variant, snap)
            except VmError:
                pass  # not created, or no snapshots: libvirt.remove takes what is left
        try:
            machinery.destroy()
            gone.append("vagrant machines")
        except VmError as e:
            progress(f"vagrant destroy: {e}")
    gone += libvirt.remove(names)
    gone += remove_bridge(names)
    if project.exists():
        shutil.rmtree(project, ignore_errors=True)
        gone.append(f"folder {project}")
    return gone
