"""Guest pool ``lab``: each guest a network namespace on this machine, without VMs.

    guest netns (one per variant)          the gateway (testbed.provider.gateway)
    ┌──────────────────────────┐   veth    ┌──────────────────────────────────┐
    │ eth0 10.77.0.1x  ────────┼───────────┤ g<index>: a port of br0, isolated │
    │ sandbox: Xvfb, agent,    │ (captured │ (tcpdump, mitmdump, the resolver) │
    │ client (uid of its own)  │  on br0)  └──────────────────────────────────┘
    │ mgmt0 ──┐ (filtered)     │
    └─────────┼────────────────┘
              │ management veth: the agent's port, host → guest, nothing else
       root namespace (host ↔ agent; never captured)

Guests reach the gateway only (their bridge ports are isolated from each other); the address
plan is the gateway's, the agent's port the agent's, the management filter ``mgmt``'s, the
guest's file-system, process and user view ``sandbox``'s.
"""

from __future__ import annotations

import ipaddress
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from testbed._errors import LabError
from testbed.agent.client import AGENT_PORT, AgentClient
from testbed.lab import labca, mgmt, netns, sandbox, timing
from testbed.lab.trusttemplates import TrustTemplates
from testbed.provider import gateway as gw
from testbed.provider.abstracts import Gateway, GuestHandle, GuestPool
from testbed.run import files

SCREEN = "1024x768x24"
GUEST_TOOLS = {"Xvfb": "xvfb", "xclip": "xclip"}
TOOLS = {**gw.TOOLS, **GUEST_TOOLS, **sandbox.TOOLS}  # gateway, guests, sandbox: all here
AGENT_READY_SECONDS = 20.0


def missing_on_host() -> list[str]:
    """What this machine lacks for the lab (gateway and guests), each with its fix."""
    out = gw.missing_on_host() + [f"{tool}: apt-get install {pkg}" for tool, pkg
                                  in {**GUEST_TOOLS, **sandbox.TOOLS}.items()
                                  if shutil.which(tool) is None]
    try:
        import tkinter  # noqa: F401
    except ImportError:
        out.append("tkinter for the reference client: apt-get install python3-tk")
    return out


class LabPool(GuestPool):
    name = "lab"
    start_timeout = 45.0
    concurrent = True

    def __init__(self, workdir: Path, gateway: Gateway, python: str = sys.executable,
                 shares: tuple[Path, ...] = (),
                 start_profiles: Mapping[str, Path] | None = None,
                 nss_dbs: Mapping[str, str] | None = None,
                 server_cas: Mapping[str, Path] | None = None) -> None:
        """``shares``: host folders the guests read at the same path (the scenario's);
        ``start_profiles``: variant -> a folder copied into its fresh home (else empty);
        ``nss_dbs``: variant -> its app's own NSS database, relative to the home;
        ``server_cas``: variant -> the lab servers' own certificate, trusted by a guest whose
        route leaves the gateway uninspected (it stands for a publicly trusted one)."""
        self.workdir, self.gateway, self.python = workdir, gateway, python
        self.start_profiles = dict(start_profiles or {})
        self.nss_dbs = dict(nss_dbs or {})
        self.server_cas = dict(server_cas or {})
        self.tag = gateway.tag
        self.guests: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.filesystems: list[sandbox.GuestFs] = []
        self.shares = sandbox.shares(list(shares))
        self.trust = TrustTemplates(workdir / files.LAB_TRUST, timing.Clock(workdir, "pool"))
        self.mgmt_base = ""
        self.guarded = False
        self.killed: list[str] = []  # what teardown had to SIGKILL (none: all stopped on SIGTERM)
        self._lock = threading.Lock()

    def _mgmt_subnet(self, index: int) -> tuple[str, str]:
        with self._lock:
            if not self.mgmt_base:
                used = netns.sh("ip", "-4", "-o", "addr", "show", check=False)
                for second in [16 + (int(self.tag, 16) + k) % 16 for k in range(16)]:
                    if f"inet 172.{second}." not in used:
                        self.mgmt_base = f"172.{second}"
                        break
                else:
                    raise LabError("no free 172.16.0.0/12 subnet for the management network")
        net = ipaddress.ip_network(f"{self.mgmt_base}.{index * 4 // 256}.{index * 4 % 256}/30")
        host, guest = list(net.hosts())
        return str(host), str(guest)

    def start_guest(self, variant: str, index: int, trust: Path | None) -> GuestHandle:
        ns = f"{netns.NS_PREFIX}{self.tag}-{index}"
        sh = netns.sh
        clock = timing.Clock(self.workdir, variant)  # (``lap``: each part's time, recorded)
        cas = labca.guest_cas(self.workdir, trust) + (
            [self.server_cas[variant]] if variant in self.server_cas else [])
        if cas:
            self.trust.begin(cas)  # made once for the run, beside the guests' network set-up
        sh("ip", "netns", "add", ns)
        self.guests.append(ns)
        (netns.NETNS_ETC / ns).mkdir(parents=True, exist_ok=True)
        # glibc sends A and AAAA at once from one socket; a conntrack insertion race can drop
        # one of them and stall the lookup for 5 s (seen here): ask one at a time, retry fast.
        (netns.NETNS_ETC / ns / "resolv.conf").write_text(
            f"nameserver {gw.GATEWAY_IP}\noptions single-request-reopen timeout:1 attempts:3\n")
        sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", ns=ns)
        sh("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", ns=ns)
        self.gateway.plug(f"g{index}", "eth0", ns)
        address = gw.guest_address(index)
        sh("ip", "addr", "add", f"{address}/24", "dev", "eth0", ns=ns)
        sh("ip", "link", "set", "eth0", "up", ns=ns)
        sh("ip", "route", "add", "default", "via", gw.GATEWAY_IP, ns=ns)
        clock.lap("network")
        # management: a point-to-point link to the host, never bridged, never captured,
        # filtered on both ends before anything runs in the guest
        host_ip, guest_ip = self._mgmt_subnet(index)
        self._guard_host()
        mgmt.guard_guest(ns, host_ip, guest_ip, AGENT_PORT)
        mgmt.allow_agent(self.tag, guest_ip)
        link = f"tb{self.tag}m{index}"
        sh("ip", "link", "add", link, "type", "veth", "peer", "mgmt0", "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/30", "dev", link)
        sh("ip", "link", "set", link, "up")
        sh("ip", "addr", "add", f"{guest_ip}/30", "dev", "mgmt0", ns=ns)
        sh("ip", "link", "set", "mgmt0", "up", ns=ns)
        clock.lap("management link")
        # the desktop session, in the guest's sandbox: Xvfb, a session bus, the agent; it
        # starts on the guest's /etc/ssl while the run's other trust stores are being made
        fs = sandbox.folders(files.guest_dir(self.workdir, variant),
                             sandbox.guest_uid(self.tag, index), self.start_profiles.get(variant))
        self.filesystems.append(fs)
        sandbox.system_store(fs, cas, self.trust)
        clock.lap("folders")
        token = secrets.token_urlsafe(24)
        env = sandbox.guest_env(fs, gw.base_env())
        session = sandbox.start(ns, fs, self.shares,
                                [self.python, "-m", "testbed.lab.guestinit", "--screen", SCREEN,
                                 "--listen", f"{guest_ip}:{AGENT_PORT}"], env, token)
        self.procs.append(session)
        clock.lap("session started")
        # in place before its agent answers: until its first step, only our programs run there
        sandbox.app_stores(fs, cas, self.nss_dbs.get(variant), self.trust)
        clock.lap("trust stores")
        client = AgentClient(f"http://{guest_ip}:{AGENT_PORT}", token)
        try:
            client.wait_ready(timeout=AGENT_READY_SECONDS)
        except Exception as e:
            if session.poll() is not None:
                raise LabError(f"the session of {variant} exited ({session.returncode}); "
                               f"see {fs.log}") from e
            raise
        clock.lap("agent answers")
        return GuestHandle(variant=variant, address=address, agent=client, workdir=fs.home,
                           env={"python": self.python})

    def _guard_host(self) -> None:
        with self._lock:
            if not self.guarded:
                mgmt.guard_host(self.tag, AGENT_PORT)
                self.guarded = True

    def teardown(self) -> None:
        """Every guest namespace at the same time (its processes, its links go with it)."""
        clock = timing.Clock(self.workdir, "pool")
        guests, self.guests = self.guests, []
        self.killed = netns.delete_all(guests)
        netns.reap(self.procs)
        self.procs.clear()
        clock.lap("guest namespaces deleted")
        mgmt.drop_host(self.tag)
        self.guarded = False
        self.trust.close()
        for fs in self.filesystems:
            sandbox.release(fs)
        self.filesystems.clear()
        clock.lap("host filter removed, guest folders handed back")
