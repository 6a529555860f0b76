"""Providers make guests and the gateway. The active set is listed here, in one place."""

from __future__ import annotations

from testbed._errors import LabError
from testbed.provider.abstracts import GatewayHandle, GuestHandle, Provider


def get_provider(name: str) -> type[Provider]:
    from testbed.lab.provider import LabProvider

    providers: dict[str, type[Provider]] = {"lab": LabProvider}
    try:
        return providers[name]
    except KeyError:
        raise LabError(f"provider {name!r} is not available here "
                       f"(available: {', '.join(sorted(providers))})") from None


__all__ = ["GatewayHandle", "GuestHandle", "Provider", "get_provider"]
