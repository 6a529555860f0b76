"""Provider ``lab``: the whole study on one Linux machine, without VMs.

    guest netns (one per variant)         gateway netns                 internet netns
    ┌──────────────────────────┐   veth   ┌──────────────────────┐ veth ┌───────────────────┐
    │ eth0 10.77.0.1x  ────────┼──────────┤ br0 10.77.0.1        │      │ every server       │
    │ Xvfb :N, agent, client   │ (captured│ tcpdump on br0       ├──────┤ address of the     │
    │ mgmt0 ──┐                │  on br0) │ mitmdump (transparent)│      │ data file, no route│
    └─────────┼────────────────┘          │ lab resolver         │      │ out                │
              │ management veth           └──────────────────────┘      └───────────────────┘
       root namespace (host ↔ agent; never captured)

Guests can only reach the gateway (bridge ports are isolated from each other); the internet
namespace has no default route; nothing in the lab reaches the machine's real network.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from testbed._errors import LabError
from testbed.agent.client import AgentClient
from testbed.lab import netns
from testbed.lab.internet_map import InternetMap
from testbed.provider.abstracts import GatewayHandle, GuestHandle, Provider

GUEST_NET = "10.77.0.0/24"
GATEWAY_IP = "10.77.0.1"
WAN_GW, WAN_NET = "10.77.255.1", "10.77.255.2"
AGENT_PORT = 8700
SCREEN = "1024x768x24"
TOOLS = {"ip": "iproute2", "iptables": "iptables", "bridge": "iproute2", "Xvfb": "xvfb",
         "tcpdump": "tcpdump", "xclip": "xclip"}


def guest_address(index: int) -> str:
    return f"10.77.0.{10 + index}"


def missing_on_host() -> list[str]:
    """What this machine lacks for the lab's namespaces, each with the command that fixes it."""
    out = []
    if os.geteuid() != 0:
        out.append("root rights (network namespaces, tcpdump): run as root")
    for tool, pkg in TOOLS.items():
        if shutil.which(tool) is None:
            out.append(f"{tool}: apt-get install {pkg}")
    try:
        import tkinter  # noqa: F401
    except ImportError:
        out.append("tkinter for the reference client: apt-get install python3-tk")
    return out


class LabProvider(Provider):
    name = "lab"

    def __init__(self, workdir: Path, internet: InternetMap, tag: str | None = None,
                 python: str = sys.executable) -> None:
        self.tag = tag or secrets.token_hex(2)
        self.workdir = workdir
        self.internet = internet
        self.python = python
        self.gw = f"{netns.NS_PREFIX}{self.tag}-gw"
        self.net = f"{netns.NS_PREFIX}{self.tag}-net"
        self.guests: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.mgmt_base = ""

    def missing(self) -> list[str]:
        return missing_on_host()

    # -- the network ----------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}

    def start_network(self) -> GatewayHandle:
        missing = self.missing()
        if missing:
            raise LabError("the lab cannot run here; missing: " + "; ".join(missing))
        gw, net = self.gw, self.net
        for ns in (gw, net):
            netns.sh("ip", "netns", "add", ns)
        sh = netns.sh
        for ns in (gw, net):
            sh("ip", "link", "set", "lo", "up", ns=ns)
            sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", ns=ns)
            sh("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", ns=ns)
        # gateway ↔ internet
        sh("ip", "link", "add", "wan0", "netns", gw, "type", "veth", "peer", "wan0", "netns", net)
        sh("ip", "addr", "add", f"{WAN_GW}/30", "dev", "wan0", ns=gw)
        sh("ip", "link", "set", "wan0", "up", ns=gw)
        sh("ip", "addr", "add", f"{WAN_NET}/30", "dev", "wan0", ns=net)
        sh("ip", "link", "set", "wan0", "up", ns=net)
        sh("ip", "route", "add", "default", "via", WAN_NET, ns=gw)
        sh("ip", "route", "add", GUEST_NET, "via", WAN_GW, ns=net)
        # the internet: every server address on its loopback, no route out
        batch = "".join(f"addr add {s.address}/32 dev lo\n" for s in self.internet.servers)
        sh("ip", "-batch", "-", ns=net, input=batch)
        # the guest-facing bridge
        sh("ip", "link", "add", "br0", "type", "bridge", ns=gw)
        sh("ip", "addr", "add", f"{GATEWAY_IP}/24", "dev", "br0", ns=gw)
        sh("ip", "link", "set", "br0", "up", ns=gw)
        for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
                    "net.ipv4.conf.default.send_redirects=0"):
            sh("sysctl", "-qw", key, ns=gw)
        # Where br_netfilter is loaded, iptables would run on the bridge before tcpdump's tap
        # on br0 sees the frame, and the capture would show REDIRECTed packets (to :8080)
        # instead of their real destination. Keep iptables at the IP layer.
        for key in ("net.bridge.bridge-nf-call-iptables=0",
                    "net.bridge.bridge-nf-call-ip6tables=0"):
            sh("sysctl", "-qw", key, ns=gw, check=False)
        rules = [
            ["-t", "nat", "-A", "PREROUTING", "-i", "br0", "-p", "tcp", "!", "-d", GATEWAY_IP,
             "-j", "REDIRECT", "--to-ports", "8080"],
            # the lab resolver's traffic needs no connection tracking (see resolv.conf)
            ["-t", "raw", "-A", "PREROUTING", "-i", "br0", "-p", "udp", "-d", GATEWAY_IP,
             "--dport", "53", "-j", "CT", "--notrack"],
            ["-t", "raw", "-A", "OUTPUT", "-p", "udp", "-s", GATEWAY_IP, "--sport", "53",
             "-j", "CT", "--notrack"],
            ["-P", "FORWARD", "DROP"],
            ["-A", "FORWARD", "-i", "br0", "-p", "udp", "--dport", "443", "-j", "DROP"],
            ["-A", "FORWARD", "-i", "br0", "-o", "wan0", "-j", "ACCEPT"],
            ["-A", "FORWARD", "-i", "wan0", "-o", "br0", "-m", "conntrack", "--ctstate",
             "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        ]
        for rule in rules:
            sh("iptables", "-w", *rule, ns=gw)
        # services: the internet's servers, the lab resolver
        svc = self.workdir / "lab"
        svc.mkdir(parents=True, exist_ok=True)
        env = self._env()
        ready = svc / "internet.ready"
        p = netns.spawn(net, [self.python, "-m", "testbed.lab.services.internet",
                              "--log", str(svc / "internet.jsonl"), "--workdir", str(svc),
                              "--ready", str(ready), "--map", str(self.internet.path)],
                        svc / "internet.log", env)
        self.procs.append(p)
        dns_ready = svc / "dns.ready"
        q = netns.spawn(gw, [self.python, "-m", "testbed.lab.services.dns",
                             "--map", str(self.internet.path), "--listen", GATEWAY_IP,
                             "--log", str(svc / "dns.jsonl"), "--ready", str(dns_ready)],
                        svc / "dns.log", env)
        self.procs.append(q)
        netns.wait_for(ready, p, "the simulated internet")
        netns.wait_for(dns_ready, q, "the lab resolver")
        return GatewayHandle(capture_interface="br0", guest_network=GUEST_NET,
                             infrastructure={GATEWAY_IP: "gateway (lab resolver)"})

    def spawn_on_gateway(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        env = self._env()
        env["HOME"] = str(self.workdir / "lab")
        p = netns.spawn(self.gw, argv, log, env)
        self.procs.append(p)
        return p

    # -- guests ---------------------------------------------------------------------------
    def _mgmt_subnet(self, index: int) -> tuple[str, str]:
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
        sh("ip", "netns", "add", ns)
        self.guests.append(ns)
        (netns.NETNS_ETC / ns).mkdir(parents=True, exist_ok=True)
        # glibc sends A and AAAA at once from one socket; a conntrack insertion race can drop
        # one of them and stall the lookup for 5 s (seen here): ask one at a time, retry fast.
        (netns.NETNS_ETC / ns / "resolv.conf").write_text(
            f"nameserver {GATEWAY_IP}\noptions single-request-reopen timeout:1 attempts:3\n")
        sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", ns=ns)
        sh("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", ns=ns)
        port = f"g{index}"
        sh("ip", "link", "add", port, "netns", self.gw, "type", "veth", "peer", "eth0",
           "netns", ns)
        sh("ip", "link", "set", port, "master", "br0", ns=self.gw)
        sh("ip", "link", "set", port, "up", ns=self.gw)
        sh("bridge", "link", "set", "dev", port, "isolated", "on", ns=self.gw)
        address = guest_address(index)
        sh("ip", "addr", "add", f"{address}/24", "dev", "eth0", ns=ns)
        sh("ip", "link", "set", "eth0", "up", ns=ns)
        sh("ip", "route", "add", "default", "via", GATEWAY_IP, ns=ns)
        # management: a point-to-point link to the host, never bridged, never captured
        host_ip, guest_ip = self._mgmt_subnet(index)
        link = f"tb{self.tag}m{index}"
        sh("ip", "link", "add", link, "type", "veth", "peer", "mgmt0", "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/30", "dev", link)
        sh("ip", "link", "set", link, "up")
        sh("ip", "addr", "add", f"{guest_ip}/30", "dev", "mgmt0", ns=ns)
        sh("ip", "link", "set", "mgmt0", "up", ns=ns)
        # the desktop session: Xvfb, then the agent in it
        home = self.workdir / "guests" / variant
        home.mkdir(parents=True, exist_ok=True)
        (home / ".Xauthority").touch()
        display = netns.free_display()
        env = self._env()
        x = netns.spawn(ns, ["Xvfb", f":{display}", "-screen", "0", SCREEN, "-nolisten", "tcp",
                             "-noreset"], home / "xvfb.log", env)
        self.procs.append(x)
        sock = Path(f"/tmp/.X11-unix/X{display}")
        netns.wait_for(sock, x, f"Xvfb :{display} for {variant}")
        token = secrets.token_urlsafe(24)
        env.update({"DISPLAY": f":{display}", "HOME": str(home), "XDG_SESSION_TYPE": "x11",
                    "TESTBED_AGENT_TOKEN": token})
        if trust is not None:
            env["SSL_CERT_FILE"] = str(trust)  # the guest's trust store holds the lab CA
        agent = netns.spawn(ns, [self.python, "-m", "testbed.agent", "--listen",
                                 f"{guest_ip}:{AGENT_PORT}", "--workdir", str(home)],
                            home / "agent.log", env)
        self.procs.append(agent)
        client = AgentClient(f"http://{guest_ip}:{AGENT_PORT}", token)
        try:
            client.wait_ready(timeout=20)
        except Exception as e:
            if agent.poll() is not None:
                raise LabError(f"the agent of {variant} exited ({agent.returncode}); "
                               f"see {home / 'agent.log'}") from e
            raise
        return GuestHandle(variant=variant, address=address, agent=client, workdir=home,
                           env={"python": self.python})

    # -- teardown -------------------------------------------------------------------------
    def teardown(self) -> None:
        # guests first, the gateway (tcpdump/mitmdump already stopped by the orchestrator)
        # and the internet last; sweep catches anything half-made.
        for ns in [*self.guests, self.gw, self.net]:
            netns.delete_ns(ns)
        for p in self.procs:
            try:
                p.wait(timeout=1)
            except subprocess.TimeoutExpired:
                p.kill()
        netns.sweep(self.tag)
