"""The gateway: the only path from the guests to the (simulated) internet. One per run, shared
by every guest pool. It owns the experiment network's address plan and the capture port.

    guest (any pool)        gateway netns                      internet netns
    ┌──────────────┐ plug  ┌─────────────────────────────┐ veth ┌───────────────────────┐
    │ 10.77.0.1x ──┼───────┤ br0 10.77.0.1 (ports        │      │ every server address  │
    └──────────────┘       │ isolated); tcpdump on br0,  ├──────┤ of the data file, no  │
                           │ mitmdump (transparent), the │      │ route out             │
                           │ lab resolver                │      └───────────────────────┘
                           └─────────────────────────────┘

The internet namespace has no default route; nothing behind the gateway reaches the machine's
real network.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from testbed._errors import LabError
from testbed.lab import netns, owners, timing
from testbed.lab.daemons import Daemons
from testbed.lab.exits import Exits
from testbed.lab.internet_map import InternetMap
from testbed.lab.routes import GatewayRoutes, Leg
from testbed.provider.abstracts import Gateway, GatewayHandle
from testbed.run.vantage import Vantage
from testbed.scenario.model import Route

# The address plan of the experiment network, and the port mitmdump listens on.
GUEST_NET = "10.77.0.0/24"
GATEWAY_IP = "10.77.0.1"
WAN_GW, WAN_NET = "10.77.255.1", "10.77.255.2"
MITM_PORT = 8080
TOOLS = {"ip": "iproute2", "iptables": "iptables", "bridge": "iproute2", "tcpdump": "tcpdump"}


def guest_address(index: int) -> str:
    """The experiment address of the ``index``-th guest of a run (whatever its pool)."""
    return f"10.77.0.{10 + index}"


def missing_on_host() -> list[str]:
    """What this machine lacks for the gateway, each with the command that fixes it."""
    out = [] if os.geteuid() == 0 else [
        "root rights (network namespaces, tcpdump): run as root"]
    return out + [f"{tool}: apt-get install {pkg}" for tool, pkg in TOOLS.items()
                  if shutil.which(tool) is None]


def base_env() -> dict[str, str]:
    """The whole environment of a process the lab starts: nothing of the caller's leaks in."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}


class NetnsGateway(Gateway):
    """The gateway and the simulated internet as two network namespaces on this machine."""

    def __init__(self, workdir: Path, internet: InternetMap, tag: str | None = None,
                 python: str = sys.executable) -> None:
        self.tag = tag or secrets.token_hex(2)
        self.workdir, self.internet, self.python = workdir, internet, python
        self.ns = f"{netns.NS_PREFIX}{self.tag}-gw"
        self.net = f"{netns.NS_PREFIX}{self.tag}-net"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.daemons = Daemons(workdir, internet, self.tag, self.net, WAN_NET, base_env(),
                               resolver=GATEWAY_IP)
        self.exits = Exits(workdir, internet, self.tag, self.net, WAN_NET, base_env())
        self.routes = GatewayRoutes(self.ns, self.tag, workdir, [], base_env(), GATEWAY_IP)

    def plan_routes(self, routes: Mapping[str, Route]) -> None:
        self.routes.legs = [Leg(v, guest_address(i), r) for i, (v, r) in enumerate(routes.items())]

    def vantages(self) -> dict[str, Vantage]:
        return self.routes.vantages()

    def start(self) -> GatewayHandle:
        gw, net, sh = self.ns, self.net, netns.sh
        owners.claim(self.tag, self.workdir)  # before anything of the run exists
        for ns in (gw, net):
            sh("ip", "netns", "add", ns)
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
        # the internet: every server address on its loopback (a daemon row's in the daemon's
        # own namespace, testbed.lab.daemons), no route out
        batch = "".join(f"addr add {s.address}/32 dev lo\n" for s in self.internet.servers
                        if s.daemon is None and s.exit is None)
        sh("ip", "-batch", "-", ns=net, input=batch)
        # the guest-facing bridge
        sh("ip", "link", "add", "br0", "type", "bridge", ns=gw)
        sh("ip", "addr", "add", f"{GATEWAY_IP}/24", "dev", "br0", ns=gw)
        sh("ip", "link", "set", "br0", "up", ns=gw)
        for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
                    "net.ipv4.conf.default.send_redirects=0"):
            sh("sysctl", "-qw", key, ns=gw)
        # Where br_netfilter is loaded, iptables would run on the bridge before tcpdump's tap
        # on br0 sees the frame, and the capture would show REDIRECTed packets (to the mitm
        # port) instead of their real destination. Keep iptables at the IP layer.
        for key in ("net.bridge.bridge-nf-call-iptables=0",
                    "net.bridge.bridge-nf-call-ip6tables=0"):
            sh("sysctl", "-qw", key, ns=gw, check=False)
        rules = [
            ["-t", "nat", "-A", "PREROUTING", "-i", "br0", "-p", "tcp", "!", "-d", GATEWAY_IP,
             "-j", "REDIRECT", "--to-ports", str(MITM_PORT)],
            # the lab resolver's traffic needs no connection tracking (see resolv.conf)
            ["-t", "raw", "-A", "PREROUTING", "-i", "br0", "-p", "udp", "-d", GATEWAY_IP,
             "--dport", "53", "-j", "CT", "--notrack"],
            ["-t", "raw", "-A", "OUTPUT", "-p", "udp", "-s", GATEWAY_IP, "--sport", "53",
             "-j", "CT", "--notrack"],
            # the gateway is the guests' NAT router for what it forwards (UDP, ICMP): servers
            # see one address for a guest's TCP (which mitmproxy opens from the gateway) and
            # its UDP, as behind a home router; a server that pairs a client's UDP with its TCP
            # by address (a voice server) can then answer. The capture, on br0, sees the
            # guests' own addresses.
            ["-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"],
            ["-P", "FORWARD", "DROP"],
            ["-A", "FORWARD", "-i", "br0", "-p", "udp", "--dport", "443", "-j", "DROP"],
            ["-A", "FORWARD", "-i", "br0", "-o", "wan0", "-j", "ACCEPT"],
            ["-A", "FORWARD", "-i", "wan0", "-o", "br0", "-m", "conntrack", "--ctstate",
             "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        ]
        for rule in rules:
            sh("iptables", "-w", *rule, ns=gw)
        clock = timing.Clock(self.workdir, "gateway")
        self._services()
        clock.lap("services")
        if any(leg.route.kind == "vpn" for leg in self.routes.legs):
            self.exits.start()  # a lab VPN exit is the far end of a vpn route: none without one
        self.routes.setup()
        problems = self.routes.check()
        if problems:
            raise LabError("a route is not ready; no guest was started:\n" + "\n".join(problems))
        if self.on_route_down is not None:
            self.routes.watch(self.on_route_down)
        clock.lap("exits and routes")
        return GatewayHandle(capture_interface="br0", guest_network=GUEST_NET,
                             infrastructure={GATEWAY_IP: "gateway (lab resolver)"},
                             mitm_port=MITM_PORT)

    def _services(self) -> None:
        """The internet's servers and the lab resolver, started together, awaited together."""
        svc = self.workdir / "lab"
        svc.mkdir(parents=True, exist_ok=True)
        env = base_env()
        ready = svc / "internet.ready"
        p = netns.spawn(self.net, [self.python, "-m", "testbed.lab.services.internet",
                                   "--log", str(svc / "internet.jsonl"), "--workdir", str(svc),
                                   "--ready", str(ready), "--map", str(self.internet.path)],
                        svc / "internet.log", env)
        self.procs.append(p)
        dns_ready = svc / "dns.ready"
        q = netns.spawn(self.ns, [self.python, "-m", "testbed.lab.services.dns",
                                  "--map", str(self.internet.path), "--listen", GATEWAY_IP,
                                  "--log", str(svc / "dns.jsonl"), "--ready", str(dns_ready)],
                        svc / "dns.log", env)
        self.procs.append(q)
        netns.wait_for(ready, p, "the simulated internet")
        netns.wait_for(dns_ready, q, "the lab resolver")
        self.daemons.start()

    def spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        env = base_env()
        env["HOME"] = str(self.workdir / "lab")
        p = netns.spawn(self.ns, argv, log, env)
        self.procs.append(p)
        return p

    def plug(self, port: str, peer: str, peer_ns: str | None, isolated: bool = True) -> None:
        sh = netns.sh
        sh("ip", "link", "add", port, "netns", self.ns, "type", "veth", "peer", peer,
           *(("netns", peer_ns) if peer_ns else ()))
        sh("ip", "link", "set", port, "master", "br0", "up", ns=self.ns)
        if isolated:
            sh("bridge", "link", "set", "dev", port, "isolated", "on", ns=self.ns)

    def teardown(self) -> None:
        """The gateway (tcpdump/mitmdump already stopped by the orchestrator) and the internet
        at the same time; then a sweep of anything of this run that is left."""
        clock = timing.Clock(self.workdir, "gateway")
        self.routes.stop()  # before the tunnels go: their end is no route dying
        netns.delete_all([self.ns, self.net, *self.daemons.namespaces,
                          *self.exits.namespaces])
        self.exits.teardown()
        self.daemons.teardown()
        netns.reap(self.procs)
        netns.sweep(self.tag)
        clock.lap("namespaces deleted")
        if not self.leftovers():
            owners.release(self.tag)  # kept otherwise: cleanup knows the run is gone

    def leftovers(self) -> list[str]:
        return netns.run_objects(self.tag)
