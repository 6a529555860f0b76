"""Providers make guests and the gateway. The active set is listed here, in one place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from testbed._errors import LabError
from testbed.lab.internet_map import InternetMap
from testbed.provider.abstracts import GatewayHandle, GuestHandle, Provider

if TYPE_CHECKING:
    from testbed.scenario import Scenario

# (run dir, internet, scenario, results folder, progress) -> provider
ProviderFactory = Callable[[Path, InternetMap, "Scenario", Path, Callable[[str], None]],
                           Provider]


def _lab(run: Path, internet: InternetMap, scenario: Scenario, results: Path,
         progress: Callable[[str], None]) -> Provider:
    from testbed.lab.provider import LabProvider

    return LabProvider(run, internet)


def _vagrant(run: Path, internet: InternetMap, scenario: Scenario, results: Path,
             progress: Callable[[str], None]) -> Provider:
    from testbed.vagrant.provider import VagrantProvider, machines_dir

    return VagrantProvider(run, internet, scenario, machines_dir(results, scenario), progress)


def get_provider(name: str) -> ProviderFactory:
    """The provider for a scenario's ``provider:``."""
    providers: dict[str, ProviderFactory] = {"lab": _lab, "vagrant": _vagrant}
    try:
        return providers[name]
    except KeyError:
        raise LabError(f"provider {name!r} is not available here "
                       f"(available: {', '.join(sorted(providers))})") from None


__all__ = ["GatewayHandle", "GuestHandle", "Provider", "get_provider"]
