"""An "ISP" for the ``internet`` route's tests: a network namespace the test makes, reached from
the host by a veth whose host end plays the uplink. It answers on the lab map's server
addresses (the lab's internet service), runs a real resolver (dnsmasq) on 198.18.0.53, and
captures everything it receives — never this machine's own uplink."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from testbed.lab.exits import hosts_file
from testbed.lab.internet_map import load_internet
from testbed.lab.netns import delete_ns

RESOLVER = "198.18.0.53"
EXIT = "198.18.0.51"  # a WireGuard exit inside the ISP (listening on every address)


def sh(*argv: str, ns: str | None = None) -> str:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


class Isp:
    def __init__(self, internet: Path, folder: Path) -> None:
        tag = secrets.token_hex(2)
        self.ns, self.uplink = f"tbtisp-{tag}", f"tbti{tag}"
        r = int(tag, 16) % 250
        self.host_ip, self.isp_ip = f"100.127.{r}.1", f"100.127.{r}.2"
        self.internet, self.folder = load_internet(internet), folder
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pcap = folder / "isp.pcap"

    def start(self, exit_config: Path | None = None) -> Isp:
        """``exit_config``: also run a WireGuard exit with this (far-end) config."""
        ns = self.ns
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "link", "add", self.uplink, "type", "veth", "peer", "eth0", "netns", ns)
        sh("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.uplink)
        sh("ip", "link", "set", self.uplink, "up")
        sh("ip", "addr", "add", f"{self.isp_ip}/30", "dev", "eth0", ns=ns)
        sh("ip", "link", "set", "eth0", "up", ns=ns)
        batch = "".join(f"addr add {s.address}/32 dev lo\n" for s in self.internet.servers)
        subprocess.run(["ip", "netns", "exec", ns, "ip", "-batch", "-"], input=batch + (
            f"addr add {RESOLVER}/32 dev lo\n"), text=True, check=True)
        if exit_config is not None:
            from testbed.lab.tunnels import start_tunnel
            from testbed.route.wireguard import read_config

            sh("ip", "addr", "add", f"{EXIT}/32", "dev", "lo", ns=ns)
            self.procs.append(start_tunnel(ns, f"tbtw{self.uplink[4:]}",
                                           read_config(exit_config, server=True),
                                           self.folder / "isp-wg.log", {"PATH": "/usr/bin:/bin"}))
        hosts = self.folder / "isp-hosts"
        hosts.write_text(hosts_file(self.internet))
        self._spawn(["tcpdump", "-i", "any", "-nn", "-U", "-w", str(self.pcap)], "tcpdump")
        self._spawn(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                     "--no-hosts", f"--addn-hosts={hosts}", f"--listen-address={RESOLVER}",
                     "--bind-interfaces", "--user=root", "--group=root", "--pid-file="],
                    "dnsmasq")
        ready = self.folder / "isp-internet.ready"
        self._spawn([sys.executable, "-m", "testbed.lab.services.internet", "--log",
                     str(self.folder / "isp-internet.jsonl"), "--workdir", str(self.folder),
                     "--ready", str(ready), "--map", str(self.internet.path)], "internet")
        deadline = time.monotonic() + 20
        while not ready.exists() or f"{RESOLVER}:53 " not in sh("ss", "-lnu", ns=ns):
            assert time.monotonic() < deadline, "the ISP did not come up"
            time.sleep(0.1)
        return self

    def _spawn(self, argv: list[str], name: str) -> None:
        log = (self.folder / f"isp-{name}.log").open("wb")
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns, *argv],
                                           stdout=log, stderr=subprocess.STDOUT))

    def packets(self) -> list[tuple[float, str]]:
        """(time, line) of every packet the ISP received so far (tcpdump stopped first)."""
        tcpdump = self.procs[0]
        if tcpdump.poll() is None:
            tcpdump.send_signal(signal.SIGINT)
            tcpdump.wait(timeout=10)
        text = subprocess.run(["tcpdump", "-tt", "-nn", "-r", str(self.pcap)],
                              capture_output=True, text=True).stdout
        return [(float(line.split()[0]), line) for line in text.splitlines()
                if line and line[0].isdigit()]

    def stop(self) -> None:
        delete_ns(self.ns)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["ip", "link", "delete", self.uplink], capture_output=True)
