"""What testbed makes in libvirt for its machines, and takes away again, through ``virsh``.

* the management network: isolated (no ``<forward>``: guests on it reach the host's bridge
  address and nothing else), with DHCP for vagrant's ssh; checked before any guest starts;
* a storage pool of its own, so that the box's base image, the disks and their snapshots all
  go when the machines go;
* ``remove``: every domain with the machines' prefix (snapshots first), the pool with its
  volumes, the network; nothing else is touched.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from testbed import _command as command
from testbed._errors import VmError
from testbed.vagrant.machines import Names

URI = "qemu:///system"
POOLS = Path("/var/lib/libvirt/images")


def virsh(*args: str, check: bool = True, timeout: float = 120) -> str:
    return command.run(["virsh", "-q", "-c", URI, *args], VmError, timeout, check=check,
                       label=f"virsh {' '.join(args)}")


def listed(*args: str) -> set[str]:
    return {x.strip() for x in virsh(*args, "--name", check=False).splitlines() if x.strip()}


def free_subnet() -> str:
    """A 192.168.x.0/24 that neither the host's routes nor another libvirt network uses."""
    used = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True).stdout
    for net in listed("net-list", "--all"):
        used += virsh("net-dumpxml", net, check=False)
    for x in range(123, 250):
        if f"192.168.{x}." not in used:
            return f"192.168.{x}.0/24"
    raise VmError("no free 192.168.x.0/24 for the management network")


def isolation_problems(network: str) -> list[str]:
    """Why ``network`` is not an isolated libvirt network (empty when it is)."""
    xml = ET.fromstring(virsh("net-dumpxml", network))
    problems = []
    if xml.find("forward") is not None:
        problems.append(f"libvirt network {network} forwards "
                        f"({ET.tostring(xml.find('forward') or xml, 'unicode').strip()})")
    if network not in listed("net-list"):
        problems.append(f"libvirt network {network} is not active")
    return problems


def ensure_network(names: Names, cidr: str | None) -> str:
    """The isolated management network, defined (on ``cidr``, or a free subnet) and started
    if need be; returns its CIDR."""
    if names.network not in listed("net-list", "--all"):
        net = ipaddress.ip_network(cidr or free_subnet())
        hosts = list(net.hosts())
        definition = (f"<network><name>{names.network}</name>"
               f"<bridge name='{names.network}' stp='off' delay='0'/>"
               f"<ip address='{hosts[0]}' netmask='{net.netmask}'><dhcp>"
               f"<range start='{hosts[len(hosts) // 2]}' end='{hosts[-1]}'/>"
               f"</dhcp></ip></network>")
        with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
            f.write(definition)
            f.flush()
            virsh("net-define", f.name)
    if names.network not in listed("net-list"):
        virsh("net-start", names.network)
    ip = ET.fromstring(virsh("net-dumpxml", names.network)).find("ip")
    if ip is None:
        raise VmError(f"libvirt network {names.network} has no address")
    return str(ipaddress.ip_interface(f"{ip.get('address')}/{ip.get('netmask')}").network)


def ensure_pool(names: Names) -> None:
    if names.pool not in listed("pool-list", "--all"):
        virsh("pool-define-as", names.pool, "dir", "--target", str(POOLS / names.pool))
        virsh("pool-build", names.pool)
    if names.pool not in listed("pool-list"):
        virsh("pool-start", names.pool)


def domains(names: Names) -> list[str]:
    return sorted(d for d in listed("list", "--all") if d.startswith(names.prefix))


def qemu_pids(names: Names) -> list[int]:
    """qemu processes of these machines (by the domain prefix on their command line)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "qemu-system" in cmd and f"guest={names.prefix}" in cmd:
                pids.append(int(d.name))
    return pids


def remove_domain(names: Names, domain: str) -> list[str]:
    """One domain with its snapshots and its disk (``<domain>.img`` in the machines' pool)."""
    if domain not in listed("list", "--all"):
        return []
    virsh("destroy", domain, check=False)
    for snap in virsh("snapshot-list", domain, "--name", check=False).split():
        virsh("snapshot-delete", domain, snap, check=False)
    virsh("undefine", domain, "--snapshots-metadata", "--nvram", check=False)
    virsh("vol-delete", "--pool", names.pool, f"{domain}.img", check=False)
    return [f"domain {domain}"]


def remove(names: Names) -> list[str]:
    """Remove every domain, volume, pool and network of these machines; returns what went.
    Best effort, each step on its own: a half-made set of machines goes too."""
    gone = []
    for dom in domains(names):
        gone += remove_domain(names, dom)
    for pid in qemu_pids(names):
        try:
            os.kill(pid, signal.SIGKILL)
            gone.append(f"qemu pid {pid}")
        except OSError:
            pass
    if names.pool in listed("pool-list", "--all"):
        virsh("pool-start", names.pool, check=False)
        for line in virsh("vol-list", names.pool, check=False).splitlines():
            if line.split():
                virsh("vol-delete", "--pool", names.pool, line.split()[0], check=False)
        virsh("pool-destroy", names.pool, check=False)
        virsh("pool-delete", names.pool, check=False)
        virsh("pool-undefine", names.pool, check=False)
        gone.append(f"pool {names.pool}")
    shutil.rmtree(POOLS / names.pool, ignore_errors=True)
    if names.network in listed("net-list", "--all"):
        virsh("net-destroy", names.network, check=False)
        virsh("net-undefine", names.network, check=False)
        gone.append(f"network {names.network}")
    return gone
