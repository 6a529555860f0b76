"""The roles of a run: one gateway, and the guest pool of the scenario's ``provider``. The
active set of pools is listed here, in one place (``POOLS``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from testbed._errors import LabError
from testbed.provider.abstracts import Agent, Gateway, GatewayHandle, GuestHandle, GuestPool

if TYPE_CHECKING:
    from testbed.lab.internet_map import InternetMap
    from testbed.scenario import Scenario


@dataclass(frozen=True)
class Context:
    """What a pool is made from: the run's folder, scenario, results folder and progress."""

    run: Path
    scenario: Scenario
    results: Path
    progress: Callable[[str], None]


def make_gateway(run: Path, internet: InternetMap) -> Gateway:
    """The run's one gateway, which every pool shares."""
    from testbed.provider.gateway import NetnsGateway

    return NetnsGateway(run, internet)


@dataclass(frozen=True)
class PoolKind:
    """One provider: its pool, made on the run's gateway, and what this machine lacks for it
    (gateway and guests), checked once, before anything of a run is made."""

    make: Callable[[Context, Gateway], GuestPool]
    unavailable: Callable[[Scenario], list[str]] = lambda scenario: []
    gateway: Callable[[Path, InternetMap], Gateway] = make_gateway


def _lab(ctx: Context, gateway: Gateway) -> GuestPool:
    from testbed.lab.provider import LabPool

    scenario = ctx.scenario
    folders = {scenario.path.parent} | {c.build_path.parent for c in scenario.clients.values()
                                        if c.build_path is not None}
    starts = {v: c.profile for v, c in scenario.clients.items() if c.profile is not None}
    nss = {v: c.app.nss_db for v, c in scenario.clients.items() if c.app.nss_db}
    return LabPool(ctx.run, gateway, shares=tuple(sorted(folders)), start_profiles=starts,
                   nss_dbs=nss)


def _vagrant(ctx: Context, gateway: Gateway) -> GuestPool:
    """The VMs; with the lab's pool beside them when some clients have no ``vm:``
    (``testbed.provider.mixed``)."""
    from testbed.provider.mixed import MixedPool
    from testbed.vagrant.provider import VagrantPool, machines_dir

    vms = VagrantPool(ctx.run, gateway, ctx.scenario, machines_dir(ctx.results, ctx.scenario),
                      ctx.progress)
    route = {v: "vagrant" if c.vm else "lab" for v, c in ctx.scenario.clients.items()}
    if "lab" not in route.values():
        return vms
    return MixedPool({"vagrant": vms, "lab": _lab(ctx, gateway)}, route)


def _lab_unavailable(scenario: Scenario) -> list[str]:
    from testbed.lab.provider import missing_on_host

    return missing_on_host()


def _vagrant_unavailable(scenario: Scenario) -> list[str]:
    from testbed.vagrant.provider import unavailable

    lab = [c for c in scenario.clients.values() if not c.vm]
    return unavailable(scenario) + (_lab_unavailable(scenario) if lab else [])


def _with_daemons(check: Callable[[Scenario], list[str]]) -> Callable[[Scenario], list[str]]:
    """``check``, and the daemon programs of the scenario's simulated internet (the gateway's,
    whatever the pool)."""
    def unavailable(scenario: Scenario) -> list[str]:
        from testbed.lab.daemons import missing_programs
        from testbed.lab.internet_map import load_internet

        internet = scenario.internet_path
        return check(scenario) + (missing_programs(load_internet(internet)) if internet else [])

    return unavailable


POOLS: dict[str, PoolKind] = {"lab": PoolKind(_lab, _with_daemons(_lab_unavailable)),
                              "vagrant": PoolKind(_vagrant, _with_daemons(_vagrant_unavailable))}


def get_pool(name: str) -> PoolKind:
    """The guest pool for a scenario's ``provider:``."""
    try:
        return POOLS[name]
    except KeyError:
        raise LabError(f"provider {name!r} is not available here "
                       f"(available: {', '.join(sorted(POOLS))})") from None


__all__ = ["POOLS", "Agent", "Context", "Gateway", "GatewayHandle", "GuestHandle", "GuestPool",
           "PoolKind", "get_pool", "make_gateway"]
