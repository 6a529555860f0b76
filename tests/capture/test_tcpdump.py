"""tcpdump for real, in a namespace of its own: statistics recorded, pcap complete on stop."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.analysis import read_packets
from testbed.capture import Tcpdump, parse_stats
from testbed.lab import netns

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("tcpdump") is None,
                                reason="needs root and tcpdump")


class OneNamespace:
    """Just enough of a gateway: a namespace with loopback, where tcpdump runs."""

    def __init__(self) -> None:
        self.ns = f"{netns.NS_PREFIX}{secrets.token_hex(2)}-cap"
        netns.sh("ip", "netns", "add", self.ns)
        netns.sh("ip", "link", "set", "lo", "up", ns=self.ns)

    def spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        return netns.spawn(self.ns, argv, log, {"PATH": os.environ["PATH"]})


def test_capture_statistics_and_packets(tmp_path):
    lab = OneNamespace()
    try:
        dump = Tcpdump(lab, "lo", tmp_path / "lo.pcap", tmp_path / "tcpdump.log")  # type: ignore[arg-type]
        dump.start()
        send = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                "for i in range(25): s.sendto(b'x' * 100, ('127.0.0.1', 9999))\n")
        netns.sh(sys.executable, "-c", send, ns=lab.ns)
        stats = dump.stop()
    finally:
        netns.delete_ns(lab.ns)
    assert stats.complete and stats.dropped == 0
    assert stats.captured is not None and stats.captured >= 25
    udp = [p for p in read_packets(tmp_path / "lo.pcap") if p.proto == "udp" and p.dport == 9999]
    assert len(udp) == 25
    assert all(p.src == "127.0.0.1" for p in udp)


def test_stats_of_a_killed_tcpdump_are_incomplete():
    assert not parse_stats("listening on br0, link-type EN10MB\n").complete
    text = ("listening on br0\n12 packets captured\n13 packets received by filter\n"
            "1 packet dropped by kernel\n")
    stats = parse_stats(text)
    assert (stats.captured, stats.received, stats.dropped, stats.complete) == (12, 13, 1, True)
