"""Providers make guests and the gateway. The active set is listed here, in one place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from testbed._errors import LabError
from testbed.lab.internet_map import InternetMap
from testbed.provider.abstracts import GatewayHandle, GuestHandle, Provider

ProviderFactory = Callable[[Path, InternetMap], Provider]


def get_provider(name: str) -> ProviderFactory:
    """The provider class for a scenario's ``provider:``; called with (run dir, internet)."""
    from testbed.lab.provider import LabProvider

    providers: dict[str, ProviderFactory] = {"lab": LabProvider}
    try:
        return providers[name]
    except KeyError:
        raise LabError(f"provider {name!r} is not available here "
                       f"(available: {', '.join(sorted(providers))})") from None


__all__ = ["GatewayHandle", "GuestHandle", "Provider", "get_provider"]
