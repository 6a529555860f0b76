"""Lab VPN exits: a row of the internet data file with ``exit: {wireguard: FILE}`` is the far
end of a real WireGuard tunnel, on the row's address — so the lab map places the egress of a
``vpn`` route through it in the row's country (docs/routes.md).

    internet netns ── veth x<i> ──┐   one namespace per exit row, tbed-<tag>-x<i>:
    (routes <address>/32 to it)   └── eth0 <address>/32; tb<tag>x<i> (wireguard-go, the row's
                                      config); NAT from the tunnel out of eth0; dnsmasq on
                                      the tunnel's address answering the map's names

Everything goes with the namespace (the gateway's teardown, ``netns.sweep``).
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import time
from pathlib import Path

from testbed._errors import LabError
from testbed.lab import netns, tunnels
from testbed.lab.internet_map import InternetMap, Server
from testbed.route import wireguard as wg

TOOLS = {**wg.TOOLS, "dnsmasq": "dnsmasq"}


def missing_programs(internet: InternetMap) -> list[str]:
    if not internet.exits():
        return []
    return [f"{tool}: the lab VPN exits of {internet.path.name} need it; apt-get install {pkg}"
            for tool, pkg in TOOLS.items() if shutil.which(tool) is None]


def hosts_file(internet: InternetMap) -> str:
    return "".join(f"{s.address} {n}\n" for s in internet.servers for n in s.names)


class Exits:
    """The lab VPN exits of one run's simulated internet (none when no row is one)."""

    def __init__(self, run: Path, internet: InternetMap, tag: str, internet_ns: str,
                 router: str, env: dict[str, str]) -> None:
        self.run, self.internet, self.tag = run, internet, tag
        self.internet_ns, self.router, self.env = internet_ns, router, env
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        rows = self.internet.exits()
        if not rows:
            return
        netns.sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=self.internet_ns)
        for i, row in enumerate(rows):
            self._start(i, row)

    def _start(self, i: int, row: Server) -> None:
        assert row.exit is not None
        config = wg.read_config(row.exit, server=True)
        if config.problems:
            raise LabError(f"lab VPN exit {row.name}: " + "; ".join(config.problems))
        sh, ns = netns.sh, f"{netns.NS_PREFIX}{self.tag}-x{i}"
        self.namespaces.append(ns)  # before it exists: teardown removes what was half-made
        netns.internet_host(ns, self.internet_ns, f"x{i}", row.address, self.router,
                            ("net.ipv4.ip_forward=1",))
        folder = self.run / "lab" / "exits" / row.name
        folder.mkdir(parents=True, exist_ok=True)
        link = wg.link_name(self.tag, "x", i)
        self.procs.append(tunnels.start_tunnel(ns, link, config, folder / "wireguard.log",
                                          self.env))
        sh("nft", "-f", "-", ns=ns, input=(
            "table ip testbed_exit {\n  chain postrouting {\n"
            "    type nat hook postrouting priority 100; policy accept;\n"
            f'    iifname "{link}" oifname "eth0" masquerade\n  }}\n'
            "  chain forward {\n    type filter hook forward priority 0; policy drop;\n"
            f'    iifname "{link}" oifname "eth0" accept\n'
            f'    iifname "eth0" oifname "{link}" ct state established,related accept\n'
            "  }\n}\n"))
        inner = str(ipaddress.ip_interface(config.addresses[0]).ip)
        hosts = folder / "hosts"
        hosts.write_text(hosts_file(self.internet))
        log = folder / "dnsmasq.log"
        proc = netns.spawn(ns, ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                                "--no-resolv", "--no-hosts", f"--addn-hosts={hosts}",
                                f"--listen-address={inner}", "--bind-interfaces",
                                "--user=root", "--group=root", "--pid-file=",
                                "--log-queries", f"--log-facility={log}"],
                           folder / "dnsmasq.out", self.env)
        self.procs.append(proc)
        deadline = time.monotonic() + 10
        while f"{inner}:53 " not in sh("ss", "-lnu", ns=ns, check=False):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"the resolver of lab VPN exit {row.name} did not start; see "
                               f"{folder / 'dnsmasq.out'}")
            time.sleep(0.05)

    def teardown(self) -> None:
        netns.delete_all(self.namespaces)
        netns.reap(self.procs)
        self.procs.clear()
