"""A scenario as the machine list ``vms/Vagrantfile`` reads (``TESTBED_MACHINES``, JSON).

The Vagrantfile is not edited by hand: it defines one guest per variant from this list. Each
guest has two NICs:

* management (vagrant's own NIC, first): an isolated libvirt network (no ``<forward>``),
  host ↔ agent and ssh only, never captured;
* experiment: a port of a bridge on the host that has no address of its own; its only other
  port leads into the gateway namespace, where tcpdump and mitmdump run. The guest's address
  and route on it are fixed here and set up by testbed, not by vagrant (``auto_config: false``).

Every name carries one key (``Names``), derived from the machines' folder, so that two
scenarios or two checkouts never share a VM, network, bridge or storage pool.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.agent.client import AGENT_PORT
from testbed.provider.gateway import GATEWAY_IP, GUEST_NET, guest_address
from testbed.scenario import Scenario


@dataclass(frozen=True)
class Names:
    """The names of everything made for one machines folder (Linux names: ≤ 15 characters)."""

    key: str  # 6 hex digits

    @classmethod
    def of(cls, project: Path) -> Names:
        return cls(hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:6])

    @property
    def prefix(self) -> str:          # libvirt domains: tb<key>-<variant>
        return f"tb{self.key}-"

    @property
    def network(self) -> str:         # the management network and its bridge
        return f"tbm{self.key}"

    @property
    def bridge(self) -> str:          # the experiment bridge (root namespace, no address)
        return f"tbx{self.key}"

    @property
    def uplink(self) -> str:          # its veth into the gateway namespace
        return f"tbx{self.key}u"

    @property
    def pool(self) -> str:            # the storage pool (disks, snapshots, the box's image)
        return f"tbp{self.key}"

    def mac(self, index: int) -> str:
        k = self.key
        return f"52:54:00:{k[0:2]}:{k[2:4]}:{(0x10 + index) & 0xff:02x}"


COMMUNICATORS = {"linux": ("ssh",), "windows": ("winssh", "winrm")}  # the first: default


def communicator(vm: dict[str, Any]) -> str:
    """How vagrant talks to a guest: ``ssh`` (Linux), ``winssh`` (Windows' own OpenSSH, in
    every vagrant) or ``winrm`` (needs vagrant's WinRM gems, which Debian's lacks)."""
    return str(vm.get("communicator") or COMMUNICATORS[str(vm.get("os", "linux"))][0])


def machine_list(scenario: Scenario, names: Names, management: str,
                 driver: str = "kvm") -> dict[str, Any]:
    """The machine list; ``management`` is the management network's CIDR, ``driver`` the
    libvirt domain type (``kvm``, or ``qemu`` for software emulation)."""
    config = scenario.vagrant or {}
    mgmt = ipaddress.ip_network(management)
    guests = []
    for index, (variant, client) in enumerate(scenario.clients.items()):
        if client.vm is None:
            continue  # a lab guest on the same gateway (testbed.provider.mixed)
        vm = client.vm
        inst = vm.get("installer") or {}
        os_name = vm.get("os", "linux")
        guests.append({
            "name": variant, "box": vm.get("box"), "os": os_name,
            "communicator": communicator(vm),
            "cpus": vm.get("cpus", 2), "memory": vm.get("memory", 2048),
            "experiment_ip": guest_address(index), "experiment_mac": names.mac(index),
            "agent_port": AGENT_PORT,
            "installer": {"file": Path(str(inst.get("path") or inst.get("url", ""))).name,
                          "sha256": inst.get("sha256"), "args": inst.get("args", [])}
            if inst else None,
        })
    return {
        "scenario": scenario.name,
        "hypervisor": config.get("hypervisor", "libvirt"),
        "libvirt": {"driver": driver, "prefix": names.prefix, "pool": names.pool},
        "management_network": {"name": names.network, "cidr": str(mgmt),
                               "host_ip": str(next(mgmt.hosts()))},
        "experiment_network": {"bridge": names.bridge, "cidr": GUEST_NET,
                               "gateway_ip": GATEWAY_IP},
        "guests": guests,
    }


def write_machine_list(spec: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(spec, indent=2) + "\n")
    return path
