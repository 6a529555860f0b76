"""The routes out of the gateway (docs/routes.md): each guest's packets leave by its variant's
route and by no other — fail-closed.

    guest G ── br0 ─┬─ simulated: mitmdump / NAT out of wan0 (the lab's internet)
                    ├─ vpn:  ip rule from G → table 100+k: default dev tb<tag>t<k> (wireguard-go),
                    │        else blackhole; DNS to the gateway DNATed to the route's resolver
                    ├─ internet: ip rule from G → table 150+k: default via the host, dev
                    │        up<k> (``testbed.lab.uplink``), else blackhole; DNS DNATed to a
                    │        forwarder on the gateway that logs every query and answer
                    └─ drop: ip rule from G → blackhole; only the lab resolver answers it

Two layers keep a guest on its route: policy routing (a table whose last route is a
blackhole), and the fence, an nftables table ``tb<tag>_route`` in the gateway's namespace that
drops a guest's packets leaving by any other interface, and every packet of a route that died
(its ``dead`` set). The fence goes with the namespace (teardown, ``testbed lab cleanup``).

The routes are checked before guests start (:meth:`GatewayRoutes.check`) and watched during
the run (:meth:`GatewayRoutes.watch`): a route whose tunnel process exits, whose interface
goes, or whose resolver stops answering through it is dead from its last good check on.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from testbed._errors import LabError
from testbed.lab import netns
from testbed.lab import tunnels as tun
from testbed.lab.uplink import Uplink, link_up
from testbed.route import probe
from testbed.route import wireguard as wg
from testbed.run.vantage import RouteDown, Vantage
from testbed.scenario.model import Route

TABLE_BASE, UPLINK_TABLE_BASE, DROP_TABLE = 100, 150, 199
FORWARDER_PORT = 5300  # + k: the gateway's resolver of uplink k
RULE_PRIORITY = 1000
WATCH_SECONDS = 1.0
FAILED_PROBES = 2  # answers missed in a row before a route counts as dead
PROBE_NAME = "example."
OUTSIDE = "198.51.100.1"  # an address beyond the gateway, for `ip route get`


def fence_table(tag: str) -> str:
    return f"tb{tag}_route"


@dataclass(frozen=True)
class Leg:
    """One guest on its route."""

    variant: str
    address: str
    route: Route


@dataclass
class Tunnel:
    """One way out (a WireGuard tunnel, or an uplink of the host) and the guests on it."""

    label: str
    ifname: str
    table: int
    config: wg.WgConfig | None
    resolver: str
    legs: list[Leg]
    proc: subprocess.Popen[bytes] | None = None
    uplink: Uplink | None = None
    dns: str = ""  # where the guests' DNS is DNATed to (else the resolver)
    echo: str = ""
    last_ok: float = 0.0
    misses: int = 0
    dead: RouteDown | None = None


@dataclass
class GatewayRoutes:
    ns: str
    tag: str
    workdir: Path
    legs: list[Leg]
    env: dict[str, str]
    gateway_ip: str
    wan: str = "wan0"
    bridge: str = "br0"
    tunnels: list[Tunnel] = field(default_factory=list)
    uplinks: dict[str, Uplink] = field(default_factory=dict)  # host interface -> its link
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _inside: probe.InNamespace | None = None

    @property
    def routed(self) -> list[Leg]:
        return [g for g in self.legs if g.route.kind != "simulated"]

    # -- set-up ---------------------------------------------------------------------------
    def setup(self) -> None:
        """Tunnels, policy routing, NAT exceptions and the fence (nothing without routes)."""
        if not self.routed:
            return
        sh = netns.sh
        by_config: dict[Path, list[Leg]] = {}
        by_uplink: dict[str, list[Leg]] = {}
        for leg in self.routed:
            if leg.route.kind == "vpn" and leg.route.config is not None:
                by_config.setdefault(leg.route.config, []).append(leg)
            elif leg.route.kind == "internet":
                by_uplink.setdefault(leg.route.uplink, []).append(leg)
        for leg in self.routed:  # first the host's uplinks (a tunnel may go out of one)
            if leg.route.uplink and leg.route.uplink not in self.uplinks:
                up = Uplink(self.tag, len(self.uplinks), leg.route.uplink)
                self.uplinks[up.name] = up
                up.open(self.ns, leg.route.gateway)
        for k, (path, legs) in enumerate(by_config.items()):
            self.tunnels.append(self._tunnel(k, path, legs))
        for legs in by_uplink.values():
            self.tunnels.append(self._uplink(legs))
        sh("ip", "route", "add", "blackhole", "default", "table", str(DROP_TABLE), ns=self.ns)
        ifname = {leg.address: t.ifname for t in self.tunnels for leg in t.legs}
        resolver = {leg.address: t.dns or t.resolver for t in self.tunnels for leg in t.legs}
        for i, leg in enumerate(self.routed):
            g = leg.address
            ipt = self._iptables
            ipt("-t", "nat", "-I", "PREROUTING", "1", "-s", g, "-j", "RETURN")  # no mitmdump
            table = DROP_TABLE
            if leg.route.kind in ("vpn", "internet"):
                dev, r = ifname[g], resolver[g]
                table = next(t.table for t in self.tunnels if t.ifname == dev)
                for proto in ("udp", "tcp"):  # DNS through the tunnel, to its resolver
                    ipt("-t", "nat", "-I", "PREROUTING", "1", "-s", g, "-d", self.gateway_ip,
                        "-p", proto, "--dport", "53", "-j", "DNAT", "--to-destination", r)
                ipt("-t", "raw", "-I", "PREROUTING", "1", "-s", g, "-j", "ACCEPT")  # tracked
                ipt("-t", "nat", "-I", "POSTROUTING", "1", "-s", g, "-o", dev,
                    "-j", "MASQUERADE")
                ipt("-A", "FORWARD", "-i", self.bridge, "-o", dev, "-s", g, "-j", "ACCEPT")
                ipt("-A", "FORWARD", "-i", dev, "-o", self.bridge, "-d", g, "-m", "conntrack",
                    "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
            ipt("-t", "nat", "-I", "POSTROUTING", "1", "-s", g, "-o", self.wan, "-j", "RETURN")
            sh("ip", "rule", "add", "from", f"{g}/32", "table", str(table), "priority",
               str(RULE_PRIORITY + i), ns=self.ns)
        sh("nft", "-f", "-", ns=self.ns, input=self.fence(ifname))
        self._inside = probe.InNamespace(self.ns)

    def _iptables(self, *rule: str) -> None:
        netns.sh("iptables", "-w", *rule, ns=self.ns)

    def _tunnel(self, k: int, path: Path, legs: list[Leg]) -> Tunnel:
        config = wg.read_config(path)
        label = legs[0].route.label
        if config.problems:
            raise LabError(f"route {label}: " + "; ".join(config.problems))
        resolver = legs[0].route.resolver or (config.dns[0] if config.dns else "")
        if not resolver:
            raise LabError(f"route {label}: no resolver: name one (route: {{vpn: {{config: …, "
                           f"resolver: ADDRESS}}}}) or give the config a DNS line")
        t = Tunnel(label=label, ifname=wg.link_name(self.tag, "t", k), table=TABLE_BASE + k,
                   config=config, resolver=resolver, legs=legs, echo=legs[0].route.echo,
                   uplink=self.uplinks.get(legs[0].route.uplink))
        if t.uplink is not None:  # the tunnel itself goes out of the host's uplink
            for peer in config.peers:
                if not _is_ip(peer.endpoint_host):
                    raise LabError(f"route {label}: name the peer's Endpoint by address to "
                                   f"reach it through uplink {t.uplink.name}")
                netns.sh("ip", "route", "replace", f"{peer.endpoint_host}/32", "via",
                         t.uplink.gateway_side, "dev", t.uplink.gw_link, ns=self.ns)
        folder = self.workdir / "lab" / "routes"
        t.proc = tun.start_tunnel(self.ns, t.ifname, config, folder / f"{t.ifname}.log",
                                 self.env)
        sh = netns.sh
        sh("ip", "route", "add", "default", "dev", t.ifname, "table", str(t.table), ns=self.ns)
        sh("ip", "route", "add", "blackhole", "default", "metric", "4000", "table",
           str(t.table), ns=self.ns)
        for a in config.addresses:  # the gateway's own probes of the route go through it
            sh("ip", "rule", "add", "from", str(ipaddress.ip_interface(a).ip), "table",
               str(t.table), "priority", str(RULE_PRIORITY - 100 + k), ns=self.ns)
        return t

    def _uplink(self, legs: list[Leg]) -> Tunnel:
        """The host's uplink ``legs[0].route.uplink`` as way out ``up<k>``, with the
        gateway's forwarding resolver for it."""
        route = legs[0].route
        up = self.uplinks[route.uplink]
        k = up.k
        t = Tunnel(label=route.label, ifname=up.gw_link, table=UPLINK_TABLE_BASE + k,
                   config=None, resolver=route.resolver, legs=legs, uplink=up,
                   echo=route.echo, dns=f"{self.gateway_ip}:{FORWARDER_PORT + k}")
        sh, table = netns.sh, str(t.table)
        sh("ip", "route", "add", "default", "via", up.gateway_side, "dev", t.ifname, "table",
           table, ns=self.ns)
        sh("ip", "route", "add", "blackhole", "default", "metric", "4000", "table", table,
           ns=self.ns)
        sh("ip", "rule", "add", "oif", t.ifname, "table", table, "priority",
           str(RULE_PRIORITY - 50 + k), ns=self.ns)  # the forwarder's and probes' queries
        folder = self.workdir / "lab" / "routes"
        folder.mkdir(parents=True, exist_ok=True)
        ready = folder / f"{t.ifname}-dns.ready"
        t.proc = netns.spawn(self.ns, [sys.executable, "-m", "testbed.route.forwarder",
                                       "--listen", t.dns, "--upstream", t.resolver,
                                       "--device", t.ifname,
                                       "--log", str(folder / f"{t.ifname}-dns.jsonl"),
                                       "--ready", str(ready)],
                             folder / f"{t.ifname}-dns.log", self.env)
        netns.wait_for(ready, t.proc, f"the resolver of route {t.label}")
        return t

    def fence(self, ifname: dict[str, str]) -> str:
        """The nftables script of the fence (see the module's docstring)."""
        fwd, inp = [], []
        for leg in self.routed:
            g = leg.address
            if leg.route.kind == "vpn":
                fwd.append(f'ip saddr {g} oifname != "{ifname[g]}" counter drop')
                inp.append(f"ip saddr {g} counter drop")
            elif leg.route.kind == "internet":  # its DNS: the forwarder, on the gateway
                port = next(t.dns for t in self.tunnels if leg in t.legs).rsplit(":", 1)[1]
                fwd.append(f'ip saddr {g} oifname != "{ifname[g]}" counter drop')
                inp += [f"ip saddr {g} ip daddr {self.gateway_ip} udp dport {port} accept",
                        f"ip saddr {g} counter drop"]
            else:  # drop: the lab resolver on the gateway, nothing else
                fwd.append(f"ip saddr {g} counter drop")
                inp += [f"ip saddr {g} ip daddr {self.gateway_ip} udp dport 53 accept",
                        f"ip saddr {g} ip daddr {self.gateway_ip} tcp dport 53 accept",
                        f"ip saddr {g} counter drop"]
        body = "\n    ".join
        return (f"table inet {fence_table(self.tag)} {{\n"
                "  set dead { type ipv4_addr; }\n"
                "  chain forward {\n    type filter hook forward priority -10; policy accept;\n"
                "    ip saddr @dead counter drop\n    ip daddr @dead counter drop\n"
                f"    {body(fwd)}\n  }}\n"
                "  chain input {\n    type filter hook input priority -10; policy accept;\n"
                f"    {body(inp)}\n  }}\n}}\n")

    # -- pre-flight -----------------------------------------------------------------------
    def check(self, attempts: int = 10) -> list[str]:
        """What keeps a route from carrying its guests now, one sentence each (none: ready)."""
        out = []
        for t in self.tunnels:
            problem = self._tunnel_problem(t, attempts)
            if problem:
                out.append(f"route {t.label}: {problem}")
                continue
            age = tun.handshake_age(self.ns, t.ifname) if t.config is not None else 0.0
            if t.config is not None and (age is None or age > wg.HANDSHAKE_FRESH):
                out.append(f"route {t.label}: no fresh handshake with the tunnel's peer "
                           f"({t.config.peers[0].endpoint})")
            t.last_ok = time.time()
        for leg in self.routed:
            got = netns.sh("ip", "route", "get", OUTSIDE, "from", leg.address, "iif",
                           self.bridge, ns=self.ns, check=False)
            want = next((f"dev {t.ifname}" for t in self.tunnels if leg in t.legs), None)
            if want is not None and want not in got:
                out.append(f"route {leg.route.label}: {leg.variant}'s packets would not "
                           f"leave by the tunnel ({got.strip() or 'no route'})")
            if want is None and got.strip() and "blackhole" not in got:
                out.append(f"route drop: {leg.variant}'s packets would leave ({got.strip()})")
        fence = netns.sh("nft", "list", "table", "inet", fence_table(self.tag), ns=self.ns,
                         check=False)
        out += [f"route {leg.route.label}: the fence holds no rule for {leg.variant}"
                for leg in self.routed if leg.address not in fence]
        return out

    def _tunnel_problem(self, t: Tunnel, attempts: int) -> str | None:
        if t.proc is None or t.proc.poll() is not None:
            return f"{self._program(t)} is not running"
        if t.uplink is not None and (down := link_up(t.uplink.name)):
            return down
        link = netns.sh("ip", "-o", "link", "show", t.ifname, ns=self.ns, check=False)
        if ",UP" not in link and "<UP" not in link:
            return f"interface {t.ifname} is not up"
        inside = self._inside
        assert inside is not None
        for _ in range(attempts):
            if inside.call(lambda: probe.ask(t.resolver, PROBE_NAME, t.ifname)) is not None:
                return None
        return f"the resolver {t.resolver} does not answer through {self._through(t)}"

    @staticmethod
    def _program(t: Tunnel) -> str:
        return wg.TUNNEL_PROGRAM if t.config is not None else "its resolver (forwarder)"

    @staticmethod
    def _through(t: Tunnel) -> str:
        return "the tunnel" if t.config is not None else f"uplink {t.uplink.name}" \
            if t.uplink is not None else t.ifname

    # -- vantage --------------------------------------------------------------------------
    def vantages(self) -> dict[str, Vantage]:
        """Every variant's vantage as the gateway knows it (placed later by the analysis)."""
        out = {leg.variant: Vantage(route=leg.route.kind, label=leg.route.label)
               for leg in self.legs}
        for t in self.tunnels:
            egress = self._echo(t)
            how: str | None = f"echo {t.echo}"
            if egress is None and t.config is not None:
                host = t.config.peers[0].endpoint_host
                egress, how = (host, "tunnel config (peer endpoint)") if _is_ip(host) else \
                    (None, None)
            if egress is None:
                how = None
            for leg in t.legs:
                out[leg.variant] = Vantage(route=leg.route.kind, label=t.label, egress=egress,
                                           egress_from=how, resolver=t.resolver)
        return out

    def _echo(self, t: Tunnel) -> str | None:
        if not t.echo or self._inside is None:
            return None
        url = urllib.parse.urlsplit(t.echo)
        host = url.hostname or ""
        address = host if _is_ip(host) else self._inside.call(
            lambda: probe.first_address(probe.ask(t.resolver, host, t.ifname, timeout=2)))
        if address is None:
            return None
        port = url.port or (443 if url.scheme == "https" else 80)
        got = netns.sh("curl", "-s", "--max-time", "5", "--interface", t.ifname,
                       "--resolve", f"{host}:{port}:{address}", t.echo, ns=self.ns,
                       check=False).strip().splitlines()
        return got[0].strip() if got and _is_ip(got[0].strip()) else None

    # -- watching -------------------------------------------------------------------------
    def watch(self, on_down: Callable[[RouteDown], None]) -> None:
        """Check every route each second until :meth:`stop`; a dead one is fenced off and
        reported to ``on_down`` once."""
        if not self.tunnels or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, args=(on_down,), daemon=True,
                                        name="route watch")
        self._thread.start()

    def _watch(self, on_down: Callable[[RouteDown], None]) -> None:
        while not self._stop.wait(WATCH_SECONDS):
            for t in self.tunnels:
                if t.dead is not None:
                    continue
                reason = self._alive(t)
                if reason is None:
                    continue
                t.dead = RouteDown(t.label, t.last_ok or time.time(), reason,
                                   tuple(leg.variant for leg in t.legs))
                addresses = ", ".join(leg.address for leg in t.legs)
                netns.sh("nft", "add", "element", "inet", fence_table(self.tag), "dead",
                         f"{{ {addresses} }}", ns=self.ns, check=False)
                try:
                    on_down(t.dead)
                except Exception:  # the record is best effort; the fence holds regardless
                    pass

    def _alive(self, t: Tunnel) -> str | None:
        """Why ``t`` is dead now (None: it answered)."""
        if t.proc is None or t.proc.poll() is not None:
            return f"{self._program(t)} exited"
        if t.uplink is not None and (down := link_up(t.uplink.name)):
            return down
        inside = self._inside
        if inside is None:
            return "the gateway is gone"
        try:
            if not inside.call(lambda: probe.link_exists(t.ifname)):
                return f"its interface {t.ifname} is gone"
            answered = inside.call(lambda: probe.ask(t.resolver, PROBE_NAME, t.ifname))
        except Exception as e:
            return f"it could not be checked: {e}"
        if answered is not None:
            t.last_ok, t.misses = time.time(), 0
            return None
        t.misses += 1
        return (f"its resolver {t.resolver} stopped answering through {self._through(t)}"
                if t.misses >= FAILED_PROBES else None)

    def downs(self) -> list[RouteDown]:
        return [t.dead for t in self.tunnels if t.dead is not None]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._inside is not None:
            self._inside.close()
            self._inside = None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
