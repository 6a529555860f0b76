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

import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import testbed
from testbed._errors import LabError, VmError
from testbed.agent import launch
from testbed.agent.client import AGENT_PORT, AgentClient
from testbed.lab import labca, netns, owners
from testbed.provider.abstracts import Gateway, GuestHandle, GuestPool
from testbed.scenario import Scenario
from testbed.vagrant import guestsetup, libvirt
from testbed.vagrant.machinery import Machinery
from testbed.vagrant.machines import Names, machine_list, write_machine_list
from testbed.vagrant.preflight import scenario_checks

CLEAN = "testbed-clean"
VMS = Path(testbed.__file__).resolve().parent.parent / "vms"
SESSION_WAIT = 600  # s: a first boot's desktop session under software emulation


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


def unavailable(scenario: Scenario) -> list[str]:
    """Why ``scenario`` cannot run on VMs here (checked before anything is started)."""
    return [c.line() for c in scenario_checks(scenario) if not c.ok]


class VagrantPool(GuestPool):
    name = "vagrant"
    start_timeout = 3600.0  # a first run installs and provisions under software emulation
    concurrent = True       # machines come up (and are restored) at the same time

    def __init__(self, workdir: Path, gateway: Gateway, scenario: Scenario,
                 project: Path, progress: Callable[[str], None] = print,
                 parallel: bool = True) -> None:
        self.gateway = gateway
        self.concurrent = parallel  # False: one machine after another (to measure the saving)
        self.workdir, self.scenario, self.project = workdir, scenario, project
        self.progress = progress
        self.names = Names.of(project)
        self.machinery = Machinery(project, vagrant_env(), workdir / "vagrant" / "vagrant.log")
        self.spec: dict[str, Any] = {}
        self.running: list[str] = []
        self.unfinished: list[str] = []  # first runs without their clean snapshot yet
        self.timings: dict[str, dict[str, float]] = {}
        self._up_lock = threading.Lock()
        self._up_tried: set[str] = set()
        self._up_error: VmError | None = None

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
        """A first run brings the machine up (all machines of the run in one parallel
        ``vagrant up``), waits for the agent's launcher in its desktop session and saves the
        clean snapshot; a later run reverts that snapshot through libvirt directly (vagrant
        adds nothing there). Then the per-run set-up in one ssh connection (Linux: the
        receiver and run-setup.sh; Windows: run-setup.ps1 over OpenSSH), and the agent,
        started by the session's launcher, answers."""
        guest = next(g for g in self.spec["guests"] if g["name"] == variant)
        windows = guest["os"] == "windows"
        m, t0, dom = self.machinery, time.monotonic(), f"{self.names.prefix}{variant}"
        builds = tuple((v, c.build_path) for v, c in sorted(self.scenario.clients.items())
                       if c.build_path is not None and c.vm)
        archive = guestsetup.code_archive(builds)
        times = self.timings.setdefault(variant, {})
        mark = t0

        def say(what: str, step: str = "") -> None:
            nonlocal mark
            now = time.monotonic()
            if step:
                times[step] = round(now - mark, 2)
            mark = now
            self.progress(f"  {variant}: {what} [{now - t0:.0f} s]")

        if dom not in libvirt.listed("list", "--all"):
            say("first run: vagrant up and provision (minutes under software emulation)")
            self._bring_up(variant)
            say("up and provisioned; waiting for its desktop session", "up")
            self._ssh_config(variant, fresh=True)
            if windows:  # the code came with provisioning (python.ps1)
                m.run(variant, guestsetup.windows_wait_command(SESSION_WAIT),
                      timeout=SESSION_WAIT + 60)
            else:
                m.run(variant, f"for i in $(seq {SESSION_WAIT}); do pgrep -u vagrant -f "
                      "testbed-session-agent >/dev/null && exit 0; sleep 1; done; "
                      "echo 'the desktop session did not start:' >&2; "
                      "tail -20 ~vagrant/.xsession-errors >&2; exit 1",
                      timeout=SESSION_WAIT + 60)
                say("desktop session running; staging the agent's code", "session")
                self._stage(variant, archive)
            say(f"agent's launcher waiting; saving the clean snapshot {CLEAN}", "stage")
            libvirt.virsh("snapshot-create-as", dom, CLEAN, timeout=1800)
            self._staged(variant).write_text(guestsetup.digest(archive))
            self.unfinished.remove(variant)
            say("snapshot saved", "snapshot")
        else:
            if CLEAN not in libvirt.listed("snapshot-list", dom):
                raise VmError(f"{variant} has no snapshot {CLEAN}: remove the machines "
                              f"(testbed vagrant destroy {self.scenario.path}) and run again")
            self.running.append(variant)
            libvirt.virsh("snapshot-revert", dom, CLEAN, "--running", timeout=600)
            say(f"restored the clean snapshot {CLEAN}", "revert")
            staged = self._staged(variant)
            if not windows and (not staged.exists()
                                or staged.read_text() != guestsetup.digest(archive)):
                self._ssh_config(variant)
                self._stage(variant, archive)  # new code: into the clean snapshot, once
                libvirt.virsh("snapshot-delete", dom, CLEAN, timeout=600)
                libvirt.virsh("snapshot-create-as", dom, CLEAN, timeout=1800)
                staged.write_text(guestsetup.digest(archive))
                say(f"the agent's code changed: staged and saved into {CLEAN} anew", "restage")
        self._isolate_port(variant)
        host = self._ssh_config(variant).get("HostName", "")
        token = secrets.token_urlsafe(24)
        staged = self._staged(variant)
        fresh = staged.exists() and staged.read_text() == guestsetup.digest(archive)  # Linux
        env = {"TESTBED_AGENT_TOKEN": token, "AGENT_LISTEN": f"{host}:{AGENT_PORT}"}
        cas = labca.guest_cas(self.workdir, trust)
        if windows:
            m.run(variant, guestsetup.windows_setup_command(int(time.time())),
                  input=guestsetup.windows_setup_input(cas, env))
        else:
            m.run(variant, guestsetup.setup_command(int(time.time()), code=not fresh),
                  input=guestsetup.setup_input(None if fresh else archive, cas, env))
        say(f"set up at {host} (clock, CAs, token{'' if fresh or windows else ', changed code'})",
            "setup")
        agent = AgentClient(f"http://{host}:{AGENT_PORT}", token)
        agent.wait_ready(timeout=120)
        say("agent ready (started by the desktop session)", "agent")
        times["total"] = round(time.monotonic() - t0, 2)
        home = self.workdir / "guests" / variant
        home.mkdir(parents=True, exist_ok=True)
        env_out = {"python": "python" if windows else "python3"}
        if self.scenario.clients[variant].build_path is not None:
            env_out["build"] = guestsetup.guest_build(variant)
        return GuestHandle(variant=variant, address=str(guest["experiment_ip"]), agent=agent,
                           workdir=home, env=env_out)

    def _staged(self, variant: str) -> Path:
        """The digest of the code in the clean snapshot (written when it was saved)."""
        return self.project / f".code-{variant}"

    def _stage(self, variant: str, archive: bytes) -> None:
        """The agent's code into the guest before its clean snapshot, and its launcher
        imported and waiting for a run's environment."""
        self.machinery.run(variant, guestsetup.setup_command(int(time.time())),
                           input=guestsetup.setup_input(archive, [], {}))
        cue = f"~vagrant/.cache/{launch.READY}"
        self.machinery.run(variant, f"for i in $(seq {SESSION_WAIT}); do test -e {cue} && exit 0;"
                           " sleep 0.5; done; echo 'the agent launcher did not start:' >&2; "
                           "tail -20 ~vagrant/.cache/testbed-agent.log >&2; exit 1",
                           timeout=SESSION_WAIT + 60)

    def _bring_up(self, variant: str) -> None:
        """``vagrant up`` of every machine not created yet, once, in parallel; the others'
        threads wait for it."""
        with self._up_lock:
            if variant not in self._up_tried:
                todo = [g["name"] for g in self.spec["guests"] if self.concurrent or
                        g["name"] == variant]
                todo = [v for v in todo
                        if f"{self.names.prefix}{v}" not in libvirt.listed("list", "--all")]
                self._up_tried.update(todo)
                self.running += todo
                self.unfinished += todo  # removed at teardown unless their snapshot is saved
                try:
                    self.machinery.up_many(todo, provider="libvirt")
                    self._up_error = None
                except VmError as e:
                    self._up_error = e
            if self._up_error is not None:
                raise self._up_error

    def _ssh_config(self, variant: str, fresh: bool = False) -> dict[str, str]:
        """The machine's ssh settings: saved beside the Vagrantfile by its first run (its
        address lives in the snapshot's memory too), else from ``vagrant ssh-config``."""
        saved = self.project / f".ssh-{variant}"
        if fresh or not saved.exists():
            return self.machinery.ssh_config(variant)
        return {k: v.strip('"') for k, _, v in
                (line.strip().partition(" ") for line in saved.read_text().splitlines()) if k}

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
        if self.timings:
            (self.workdir / "vagrant").mkdir(parents=True, exist_ok=True)
            (self.workdir / "vagrant" / "timings.json").write_text(
                json.dumps(self.timings, indent=2) + "\n")
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
