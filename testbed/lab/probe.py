"""A headless client: fetch each URL once, in order, and print what happened.

    python3 -m testbed.lab.probe "https://host/ http://host/path udp://host:3478"

For guests without a desktop (Linux VMs in tests) and for checking a gateway by hand. Standard
library only: it runs on the guest's own Python. HTTPS is verified against the system's trust
store (where testbed put the gateway's CA). Exit 1 if any URL failed.
"""

from __future__ import annotations

import socket
import sys
import time
import urllib.parse
import urllib.request


def probe(url: str, timeout: float = 20.0) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(b"testbed probe", (parts.hostname or "", parts.port or 3478))
            data, peer = s.recvfrom(2048)
            return f"{len(data)} bytes back from {peer[0]}"
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"unsupported scheme {parts.scheme!r} (http, https, udp)")
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return f"HTTP {r.status}, {len(r.read())} bytes"


def main(argv: list[str] | None = None) -> int:
    urls = [u for arg in (sys.argv[1:] if argv is None else argv) for u in arg.split()]
    if not urls:
        print("usage: python3 -m testbed.lab.probe URL...", file=sys.stderr)
        return 2
    failed = 0
    for url in urls:
        t0 = time.monotonic()
        try:
            outcome = probe(url)
        except (OSError, ValueError) as e:
            outcome, failed = f"FAILED: {e}", failed + 1
        print(f"{url}: {outcome} ({time.monotonic() - t0:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
