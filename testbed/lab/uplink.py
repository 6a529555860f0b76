"""The host's side of an ``internet`` route: a veth from the gateway's namespace to the host,
NATed out of the named uplink interface and nowhere else (docs/routes.md).

    gateway netns up<k> 100.64.x.y+2 ── veth ── tb<tag>u<k> 100.64.x.y+1 (host)
         host: ip rule iif tb<tag>u<k> → table <T>: default via <gateway> dev <uplink>,
               else blackhole; nftables table inet tb<tag>_route: from the veth only out of
               the uplink (masqueraded), to it only from the uplink; nothing to the host itself

The uplink's ``forwarding`` is switched on for the run (replies come in there) and its old
value restored at teardown — or by ``testbed lab cleanup`` after a kill, from the state file
``/run/testbed/<tag>.uplinks.json`` written before anything is changed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from testbed._errors import LabError
from testbed.lab import owners
from testbed.lab.shell import sh

HOST_TABLE = re.compile(r"^tb([0-9a-f]{4})_route$")
LAB_TAG = re.compile(r"^[0-9a-f]{4}$")
RULE_PRIORITY = 30000
TABLE_BASE = 0x7E000000  # + tag << 4 + k: one routing table per run and uplink


def host_table(tag: str) -> str:
    return f"tb{tag}_route"


def route_table(tag: str, k: int) -> int:
    return TABLE_BASE + (int(tag, 16) << 4) + k


def state_file(tag: str) -> Path:
    return owners.STATE_DIR / f"{tag}.uplinks.json"


def subnet(tag: str, k: int) -> tuple[str, str]:
    """The host's and the gateway's address on uplink link ``k`` of run ``tag`` (a /30)."""
    n = int(tag, 16)
    base = f"100.{64 + n % 64}.{(n >> 6) % 256}"
    return f"{base}.{4 * k + 1}", f"{base}.{4 * k + 2}"


def link_up(name: str) -> str | None:
    """Why host interface ``name`` cannot carry a route now (None: it can)."""
    out = sh("ip", "-o", "link", "show", name, check=False)
    if not out:
        return f"there is no interface {name} on this host"
    if "LOWER_UP" not in out or "state DOWN" in out:
        return f"interface {name} is down"
    return None


def next_hop(uplink: str, gateway: str) -> str:
    if gateway:
        return gateway
    out = sh("ip", "-4", "route", "show", "default", "dev", uplink, check=False)
    m = re.search(r"via (\S+)", out)
    if not m:
        raise LabError(f"uplink {uplink} has no default route: name its next hop "
                       "(route: {internet: {…, gateway: ADDRESS}})")
    return m.group(1)


@dataclass
class Uplink:
    tag: str
    k: int
    name: str  # the host's interface
    hop: str = ""

    @property
    def host_link(self) -> str:
        return f"tb{self.tag}u{self.k}"

    @property
    def gw_link(self) -> str:
        return f"up{self.k}"

    def open(self, gateway_ns: str, gateway: str) -> None:
        """The veth, the host's policy route, NAT and fence for this uplink."""
        problem = link_up(self.name)
        if problem:
            raise LabError(f"route internet {self.name}: {problem}")
        self.hop = next_hop(self.name, gateway)
        _remember(self.tag, self.name)
        host, gw = subnet(self.tag, self.k)
        sh("ip", "link", "add", self.host_link, "type", "veth", "peer", self.gw_link,
           "netns", gateway_ns)
        sh("ip", "addr", "add", f"{host}/30", "dev", self.host_link)
        sh("ip", "link", "set", self.host_link, "up")
        sh("ip", "addr", "add", f"{gw}/30", "dev", self.gw_link, ns=gateway_ns)
        sh("ip", "link", "set", self.gw_link, "up", ns=gateway_ns)
        for link in (self.host_link, self.name):
            sh("sysctl", "-qw", f"net.ipv4.conf.{link}.forwarding=1")
        table = str(route_table(self.tag, self.k))
        sh("ip", "route", "add", "default", "via", self.hop, "dev", self.name, "table", table)
        sh("ip", "route", "add", "blackhole", "default", "metric", "4000", "table", table)
        sh("ip", "rule", "add", "iif", self.host_link, "table", table, "priority",
           str(RULE_PRIORITY + self.k))
        links = f"tb{self.tag}u*"
        sh("nft", "-f", "-", input=(
            f"table inet {host_table(self.tag)} {{\n"
            "  chain forward {\n    type filter hook forward priority -10; policy accept;\n"
            f'    iifname "{links}" oifname != "{self.name}" counter drop\n'
            f'    oifname "{links}" iifname != "{self.name}" counter drop\n  }}\n'
            "  chain input {\n    type filter hook input priority -10; policy accept;\n"
            f'    iifname "{links}" counter drop\n  }}\n'
            "  chain postrouting {\n    type nat hook postrouting priority 100;\n"
            f'    iifname "{links}" oifname "{self.name}" masquerade\n  }}\n}}\n'))

    @property
    def gateway_side(self) -> str:
        """The host's address on the link: the gateway's next hop."""
        return subnet(self.tag, self.k)[0]


def _remember(tag: str, uplink: str) -> None:
    """Record the uplink's forwarding setting before it is changed (for ``sweep``)."""
    path = state_file(tag)
    try:
        saved = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        saved = {}
    if uplink not in saved:
        value = Path(f"/proc/sys/net/ipv4/conf/{uplink}/forwarding").read_text().strip()
        saved[uplink] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved) + "\n")


def sweep(tag: str) -> list[str]:
    """Remove what run ``tag`` made on the host for its uplinks: its nftables table, its ip
    rules and routing tables, and give each uplink its old ``forwarding`` back."""
    if not LAB_TAG.match(tag):  # a vagrant run's key: no uplinks of its own
        return []
    out = []
    tables = sh("nft", "list", "tables", "inet", check=False)
    if f"table inet {host_table(tag)}" in tables:
        sh("nft", "delete", "table", "inet", host_table(tag), check=False)
        out.append(f"nftables table inet {host_table(tag)}")
    for k in range(16):
        table = str(route_table(tag, k))
        for _ in range(8):
            if f"lookup {table}" not in sh("ip", "rule", "show", check=False):
                break
            sh("ip", "rule", "del", "table", table, check=False)
            out.append(f"ip rule to table {table}")
        if sh("ip", "route", "show", "table", table, check=False).strip():
            sh("ip", "route", "flush", "table", table, check=False)
            out.append(f"routing table {table}")
    path = state_file(tag)
    try:
        saved = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        saved = {}
    for uplink, value in saved.items():
        sh("sysctl", "-qw", f"net.ipv4.conf.{uplink}.forwarding={value}", check=False)
        out.append(f"forwarding of {uplink} back to {value}")
    path.unlink(missing_ok=True)
    return out


def objects(tag: str) -> list[str]:
    """What of run ``tag`` is on the host for its uplinks now."""
    if not LAB_TAG.match(tag):
        return []
    out = []
    if f"table inet {host_table(tag)}" in sh("nft", "list", "tables", "inet", check=False):
        out.append(f"nftables table inet {host_table(tag)}")
    rules = sh("ip", "rule", "show", check=False)
    out += [f"ip rule to table {route_table(tag, k)}" for k in range(16)
            if f"lookup {route_table(tag, k)}" in rules]
    if state_file(tag).exists():
        out.append(f"state file {state_file(tag)}")
    return out


def tags() -> set[str]:
    """The run tags with host-side uplink objects (a table or a state file) now."""
    found = {m.group(1) for line in sh("nft", "list", "tables", "inet", check=False)
             .splitlines() if (m := HOST_TABLE.match(line.split()[-1] if line else ""))}
    if owners.STATE_DIR.is_dir():
        found |= {p.name.split(".")[0] for p in owners.STATE_DIR.glob("*.uplinks.json")}
    return found
