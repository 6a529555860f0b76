"""A scenario as the machine list ``vms/Vagrantfile`` reads (``TESTBED_MACHINES``, JSON).

The Vagrantfile is not edited by hand: it defines one gateway and one guest per variant from
this list. Guests have two networks: management (host ↔ agent, never captured) and
experiment (guest ↔ gateway only, isolated: no forwarding to anything else). The gateway has
the experiment network and the way out; tcpdump and mitmdump run on it.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

from testbed.scenario import Scenario

AGENT_PORT = 8700


def machine_list(scenario: Scenario) -> dict[str, Any]:
    config = scenario.vagrant or {}
    mgmt = ipaddress.ip_network(str(config.get("management_network", "172.28.0.0/24")))
    exp = ipaddress.ip_network(str(config.get("experiment_network", "10.78.0.0/24")))
    # .1 of each network is the hypervisor's bridge on the host; the gateway takes the last
    # experiment address, guests count up from .10.
    mgmt_all, exp_all = list(mgmt.hosts()), list(exp.hosts())
    host_ip, gateway_mgmt, gateway_exp = mgmt_all[0], mgmt_all[1], exp_all[-1]
    mgmt_hosts, exp_hosts = iter(mgmt_all[9:]), iter(exp_all[9:])
    gw = config.get("gateway") or {}
    guests = []
    for variant, client in scenario.clients.items():
        vm = client.vm or {}
        inst = vm.get("installer") or {}
        guests.append({
            "name": variant, "box": vm.get("box"), "os": vm.get("os", "linux"),
            "cpus": vm.get("cpus", 2), "memory": vm.get("memory", 2048),
            "management_ip": str(next(mgmt_hosts)), "experiment_ip": str(next(exp_hosts)),
            "agent_port": AGENT_PORT,
            "installer": {"file": Path(str(inst.get("path") or inst.get("url", ""))).name,
                          "sha256": inst.get("sha256"), "args": inst.get("args", [])}
            if inst else None,
        })
    return {
        "scenario": scenario.name,
        "hypervisor": config.get("hypervisor", "libvirt"),
        "management_network": {"cidr": str(mgmt), "host_ip": str(host_ip)},
        "experiment_network": {"cidr": str(exp), "gateway_ip": str(gateway_exp)},
        "gateway": {"name": "gateway", "box": gw.get("box"), "cpus": gw.get("cpus", 1),
                    "memory": gw.get("memory", 1024), "management_ip": str(gateway_mgmt),
                    "experiment_ip": str(gateway_exp)},
        "guests": guests,
    }


def write_machine_list(scenario: Scenario, path: Path) -> Path:
    path.write_text(json.dumps(machine_list(scenario), indent=2) + "\n")
    return path
