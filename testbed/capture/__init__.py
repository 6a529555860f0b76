"""Capture at the gateway: tcpdump (pcap, ground truth) and mitmdump (decrypted flows)."""

from testbed.capture.mitm import Mitmdump
from testbed.capture.tcpdump import CaptureStats, Tcpdump, parse_stats

__all__ = ["CaptureStats", "Mitmdump", "Tcpdump", "parse_stats"]
