"""tcpdump on the gateway's guest-facing interface: the capture that is ground truth.

Started with ``-U`` (packet-buffered) and stopped with SIGTERM, never SIGKILL, so that the pcap
is complete and tcpdump prints its statistics (captured / received by filter / dropped by
kernel), which the run records.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from testbed.capture.process import await_ready, terminate
from testbed.provider.abstracts import Gateway

DRAIN_SECONDS = 0.3
STATS = {
    "captured": re.compile(r"(\d+) packets? captured"),
    "received": re.compile(r"(\d+) packets? received by filter"),
    "dropped": re.compile(r"(\d+) packets? dropped by kernel"),
}


@dataclass
class CaptureStats:
    captured: int | None = None
    received: int | None = None
    dropped: int | None = None
    complete: bool = False  # tcpdump printed its statistics (it was stopped cleanly)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_stats(text: str) -> CaptureStats:
    stats = CaptureStats()
    for key, rx in STATS.items():
        m = rx.search(text)
        if m:
            setattr(stats, key, int(m.group(1)))
    stats.complete = stats.captured is not None and stats.dropped is not None
    return stats


class Tcpdump:
    def __init__(self, gateway: Gateway, interface: str, pcap: Path, log: Path) -> None:
        self.gateway, self.interface, self.pcap, self.log = gateway, interface, pcap, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        # --immediate-mode hands over ring blocks almost per packet: with the default 2 MiB
        # ring (8 blocks at this snap length) a loaded 2-core machine drops bursts, so -B
        # gives the ring 32 MiB. Without immediate mode, packets still in an unretired
        # block are lost when tcpdump is stopped.
        argv = ["tcpdump", "-i", self.interface, "-n", "-U", "-s", "0", "-B", "32768",
                "--immediate-mode", "-Z", "root", "-w", str(self.pcap)]
        self.proc = self.gateway.spawn(argv, self.log)
        await_ready(self.proc, self.log, "listening on", "tcpdump", timeout, poll=0.05)

    def stop(self, timeout: float = 10.0) -> CaptureStats:
        if self.proc is None:
            return CaptureStats()
        if self.proc.poll() is None:
            time.sleep(DRAIN_SECONDS)  # let tcpdump write what is still in the ring
            terminate(self.proc, timeout)
        return parse_stats(self.log.read_text(errors="replace"))
