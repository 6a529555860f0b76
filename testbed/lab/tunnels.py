"""The user-space WireGuard tunnel: Debian's ``wireguard-go`` (the kernel may have no WireGuard
module; it needs ``/dev/net/tun``) in the foreground inside a network namespace, so it goes
with the namespace; configured by ``wg setconf`` from its standard input (no key on disk)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from testbed._errors import LabError
from testbed.lab import netns
from testbed.lab.shell import sh
from testbed.route.wireguard import TUNNEL_PROGRAM, WgConfig


def start_tunnel(ns: str, ifname: str, config: WgConfig, log: Path,
                 env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``wireguard-go`` in the foreground in ``ns``, configured from ``config``, its addresses
    set and the link up. The caller stops it (or it goes with the namespace)."""
    proc = netns.spawn(ns, [TUNNEL_PROGRAM, "-f", ifname], log,
                       {**env, "WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": "error"})
    deadline = time.monotonic() + 10
    while ifname not in sh("ip", "-o", "link", "show", ns=ns, check=False):
        if proc.poll() is not None:
            raise LabError(f"{TUNNEL_PROGRAM} for {config.path.name} exited with status "
                           f"{proc.returncode} before its interface existed; see {log}")
        if time.monotonic() > deadline:
            raise LabError(f"{TUNNEL_PROGRAM} made no interface {ifname} within 10 s; see {log}")
        time.sleep(0.05)
    sh("wg", "setconf", ifname, "/dev/stdin", ns=ns, input=config.setconf())
    for a in config.addresses:
        sh("ip", "addr", "add", a, "dev", ifname, ns=ns)
    if config.mtu:
        sh("ip", "link", "set", ifname, "mtu", str(config.mtu), ns=ns)
    sh("ip", "link", "set", ifname, "up", ns=ns)
    return proc


def handshake_age(ns: str, ifname: str, now: float | None = None) -> float | None:
    """Seconds since the latest handshake of any peer of ``ifname`` (None: never, or no
    such interface)."""
    out = sh("wg", "show", ifname, "latest-handshakes", ns=ns, check=False)
    stamps = [int(x) for line in out.splitlines() for x in line.split()[1:2] if x.isdigit()]
    latest = max(stamps, default=0)
    if latest == 0:
        return None
    return max(0.0, (now or time.time()) - latest)
