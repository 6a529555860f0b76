"""What ``testbed doctor --scenario FILE`` (and a run's pre-flight) says about a scenario's
routes before anything is made: the programs a tunnel needs, its config, the uplink of an
``internet`` route (present, up, a next hop known)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from testbed.route import wireguard as wg

if TYPE_CHECKING:
    from testbed.scenario.model import Route, Scenario
    from testbed.vagrant.preflight import Check

TUN = Path("/dev/net/tun")


def route_checks(scenario: Scenario) -> list[Check]:
    from testbed.vagrant.preflight import Check

    routes: dict[str, Route] = {}
    for variant in scenario.clients:
        r = scenario.route_of(variant)
        if r.kind != "simulated":
            routes.setdefault(r.label, r)
    out = []
    if any(r.kind == "vpn" for r in routes.values()):
        for tool, pkg in wg.TOOLS.items():
            path = shutil.which(tool)
            out.append(Check(tool, path is not None, path or "not found",
                             f"apt-get install {pkg} (or: make setup)"))
        out.append(Check("/dev/net/tun (wireguard-go's tunnel device)", TUN.exists(), "",
                         "modprobe tun, or give the container /dev/net/tun"))
    for label, r in routes.items():
        if r.kind == "vpn" and r.config is not None:
            problems = wg.read_config(r.config).problems
            out.append(Check(f"route {label}: its config", not problems,
                             "; ".join(problems) or str(r.config), "fix the config"))
            if r.uplink:  # the tunnel itself out of a host uplink
                out += _uplink(label, r)
        elif r.kind == "internet":
            out += _uplink(label, r)
        elif r.kind == "drop":
            out.append(Check(f"route {label}", True, "nothing leaves the lab"))
    return out


def _uplink(label: str, r: Route) -> list[Check]:
    from testbed._errors import LabError
    from testbed.lab.uplink import link_up, next_hop
    from testbed.vagrant.preflight import Check

    down = link_up(r.uplink)
    out = [Check(f"route {label}: uplink {r.uplink} is up", down is None, down or "",
                 f"ip link set {r.uplink} up, or name another uplink")]
    try:
        hop = next_hop(r.uplink, r.gateway)
        out.append(Check(f"route {label}: next hop", True, hop))
    except LabError as e:
        out.append(Check(f"route {label}: next hop", False, str(e),
                         "add gateway: ADDRESS to the route"))
    out.append(Check(f"route {label}: forwarding", True,
                     f"switched on for {r.uplink} during the run, restored after"))
    return out
