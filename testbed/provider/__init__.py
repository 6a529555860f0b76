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
                   nss_dbs=nss, server_cas=_server_cas(scenario))


def _server_cas(scenario: Scenario) -> dict[str, Path]:
    """Variant -> the lab servers' certificate, for variants whose route is not the simulated
    internet (the gateway does not intercept them: they meet the servers' own certificate)."""
    from testbed.lab.internet_map import load_internet

    routed = [v for v in scenario.clients if scenario.route_of(v).kind != "simulated"]
    if not routed or scenario.internet_path is None:
        return {}
    cert = load_internet(scenario.internet_path).tls_cert
    return {v: cert for v in routed} if cert is not None else {}


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
        from testbed.lab.exits import missing_programs as exit_programs
        from testbed.lab.internet_map import load_internet
        from testbed.route.checks import route_checks

        internet = scenario.internet_path
        loaded = load_internet(internet) if internet else None
        return check(scenario) + (missing_programs(loaded) + exit_programs(loaded)
                                  if loaded else []) + [
            f"{c.what}: {c.detail}" + (f" ({c.fix})" if c.fix else "")
            for c in route_checks(scenario) if not c.ok]

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
