"""Linux network namespaces, veth pairs and processes inside them — the lab's raw material.

Every object the lab makes carries the run's prefix ``tbed-<tag>`` (namespaces) or
``tb<tag>`` (links in the root namespace), so ``sweep`` can find and remove leftovers of a
run that was killed, and touches nothing else.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from testbed._errors import LabError
from testbed.lab import mgmt, owners, uplink
from testbed.lab.readyfile import wait_for as wait_for  # the lab's callers' name for it
from testbed.lab.shell import sh
from testbed.route import wireguard

NS_PREFIX = "tbed-"
NS_PATTERN = re.compile(r"^tbed-[0-9a-f]{4}-[a-z0-9]+$")
# lab management links; the vagrant provider's experiment bridges and their uplinks
LINK_PATTERN = re.compile(r"^tb[0-9a-f]{4}[mu]\d+$|^tbx[0-9a-f]{6}u?$")
# a lab guest's management link tb<tag>m<i>; an internet route's uplink link tb<tag>u<k>
LAB_LINK = re.compile(r"^tb[0-9a-f]{4}[mu]\d+$")
NETNS_ETC = Path("/etc/netns")


def namespaces() -> list[str]:
    out = sh("ip", "netns", "list", check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def pids_in(ns: str) -> list[int]:
    out = sh("ip", "netns", "pids", ns, check=False)
    return [int(p) for p in out.split() if p.isdigit()]


def kill_all_in(ns: str, grace: float = 3.0) -> list[str]:
    """SIGTERM every process in ``ns`` (tcpdump and mitmdump flush on it), then SIGKILL what
    is left after ``grace`` seconds; returns those (``pid command``)."""
    killed: list[str] = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = pids_in(ns)
        if not pids:
            return killed
        for pid in pids:
            if sig == signal.SIGKILL:
                killed.append(f"{pid} {_command(pid)}")
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pids_in(ns):
            time.sleep(0.05)
    return killed


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace").strip()[:120]
    except OSError:
        return "?"


def delete_ns(ns: str) -> list[str]:
    """Namespace ``ns`` and its processes; returns those that needed SIGKILL."""
    killed = kill_all_in(ns)
    sh("ip", "netns", "delete", ns, check=False)
    shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
    return killed


def delete_all(names: Iterable[str]) -> list[str]:
    """``delete_ns`` on every namespace at the same time (each waits for its processes)."""
    names = list(names)
    if len(names) <= 1:
        return [k for ns in names for k in delete_ns(ns)]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return [k for killed in pool.map(delete_ns, names) for k in killed]


def reap(procs: Iterable[subprocess.Popen[bytes]], grace: float = 1.0) -> None:
    """Collect the exit status of processes that were killed with their namespace."""
    for p in procs:
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def root_links() -> list[str]:
    out = sh("ip", "-o", "link", "show", check=False)
    return [m.group(1) for m in re.finditer(r"^\d+: ([^:@\s]+)", out, re.M)]


def tag_of(name: str) -> str | None:
    """The run tag in a lab namespace's or management link's name, ``x<key>`` for a vagrant
    run's bridge (None: not the lab's)."""
    if NS_PATTERN.match(name):
        return name[len(NS_PREFIX):len(NS_PREFIX) + 4]
    if LAB_LINK.match(name):
        return name[2:6]
    if LINK_PATTERN.match(name):  # a vagrant run's experiment bridge or uplink: x<key>
        return name[2:9]
    return None


def run_objects(tag: str) -> list[str]:
    """What of run ``tag`` exists now: its namespaces, root links and their processes."""
    out = [f"netns {ns}" for ns in namespaces() if tag_of(ns) == tag]
    out += [f"process {pid}" for ns in list(out) for pid in pids_in(ns.split()[1])]
    out += [f"link {link}" for link in root_links() if tag_of(link) == tag]
    return out + uplink.objects(tag)


def sweep(tag: str | None = None, everything: bool = False, only: str | None = None
          ) -> list[str]:
    """Remove lab namespaces and root links. ``tag``: of that run, whatever its state (its
    own teardown). Otherwise of every run whose process is gone (``owners``) — only of run
    ``only`` when given — or of every run at all with ``everything``. Returns the names
    removed, and ``kept ...`` lines for live runs left alone."""
    spaces = [ns for ns in namespaces() if NS_PATTERN.match(ns)]
    links = [link for link in root_links() if LINK_PATTERN.match(link)]
    out: list[str] = []
    if tag is not None:
        doomed = {tag}
    else:
        tags = {t for t in [*map(tag_of, spaces + links), *mgmt.tags(), *uplink.tags()]
                if t and only in (None, t)}
        doomed, out = judge(tags, spaces, everything)
    for ns in spaces:
        if tag_of(ns) in doomed:
            delete_ns(ns)
            out.append(f"netns {ns}")
    for link in links:
        if tag_of(link) in doomed:
            sh("ip", "link", "delete", link, check=False)
            out.append(f"link {link}")
    for d in NETNS_ETC.glob(f"{NS_PREFIX}*") if NETNS_ETC.exists() else []:
        if NS_PATTERN.match(d.name) and tag_of(d.name) in doomed:
            shutil.rmtree(d, ignore_errors=True)
    if tag is None:  # (a run's own teardown releases its claim once its lab is gone)
        for t in doomed:
            owners.release(t)
        if only is None:
            owners.sweep_stale_claims()
    for t in sorted(doomed):
        out += mgmt.sweep(t)
        out += uplink.sweep(t)
        out += wireguard.sweep(t)
    out += sweep_x_locks()
    return out


def judge(tags: set[str], spaces: list[str], everything: bool = False
          ) -> tuple[set[str], list[str]]:
    """Which of ``tags`` are leftovers (their run's process is gone; all with
    ``everything``), and a ``kept ...`` line for each live run."""
    if everything:
        return set(tags), []
    doomed, kept = set(), []
    for t in sorted(tags):
        pids = [p for ns in spaces if tag_of(ns) == t for p in pids_in(ns)]
        if owners.live(t, pids):
            kept.append(f"kept lab {t}: its run is still going on")
        else:
            doomed.add(t)
    return doomed, kept


def sweep_x_locks() -> list[str]:
    """Remove X lock files and sockets whose server is gone (lab displays are :100 and up)."""
    removed = []
    for lock in Path("/tmp").glob(".X[0-9]*-lock"):
        n = lock.name[2:-5]
        if not n.isdigit() or int(n) < 100:
            continue
        try:
            pid = int(lock.read_text().strip())
            os.kill(pid, 0)
            continue  # still running
        except (ValueError, OSError):
            pass
        lock.unlink(missing_ok=True)
        Path(f"/tmp/.X11-unix/X{n}").unlink(missing_ok=True)
        removed.append(f"display :{n}")
    return removed


def internet_host(ns: str, internet_ns: str, link: str, address: str, router: str,
                  sysctls: tuple[str, ...] = ()) -> None:
    """Make ``ns`` one host of the simulated internet (a daemon's, a lab VPN exit's):
    ``eth0`` holds ``address``/32, a veth to ``internet_ns`` (its end named ``link``) that
    routes the address here, and the default route back via ``router``; IPv6 off."""
    sh("ip", "netns", "add", ns)
    sh("ip", "link", "set", "lo", "up", ns=ns)
    for key in ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
                *sysctls):
        sh("sysctl", "-qw", key, ns=ns)
    sh("ip", "link", "add", link, "netns", internet_ns, "type", "veth", "peer", "eth0",
       "netns", ns)
    sh("ip", "link", "set", link, "up", ns=internet_ns)
    sh("ip", "route", "add", f"{address}/32", "dev", link, ns=internet_ns)
    sh("ip", "addr", "add", f"{address}/32", "dev", "eth0", ns=ns)
    sh("ip", "link", "set", "eth0", "up", ns=ns)
    sh("ip", "route", "add", router, "dev", "eth0", ns=ns)
    sh("ip", "route", "add", "default", "via", router, "dev", "eth0", ns=ns)


def spawn(ns: str, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` inside ``ns`` with exactly ``env``; output goes to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            return subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)
        except OSError as e:
            raise LabError(f"cannot start {argv[0]} in {ns}: {e}") from e


