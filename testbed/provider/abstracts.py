"""The two roles a run is made of, and the small interfaces they implement.

* the **gateway**: the network the guests sit on, the processes that run on it (tcpdump,
  mitmdump) and, behind it, the (simulated) internet. One per run.
* a **guest pool**: brings guests up with an agent in their desktop session, and tears them
  down. The lab's pool makes network namespaces, the vagrant pool makes VMs; every pool
  plugs its guests into the one gateway through ``Gateway.plug``.

Neither role reaches into the other. Timeouts, the state a call must leave behind, fallbacks,
events and teardown order live in the caller (``testbed.orchestrator``).
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from testbed.run.vantage import RouteDown, Vantage
    from testbed.scenario.model import Route


class Agent(Protocol):
    """The host side of a guest's agent (``testbed.agent.client.AgentClient`` or a fake)."""

    def health(self) -> dict[str, Any]: ...

    def run_steps(self, steps: list[dict[str, Any]], images: dict[str, Path],
                  timeout: float | None = None) -> dict[str, Any]: ...

    def cancel(self) -> None:
        """Stop the steps running now (and those waiting): they end as cancelled."""


@dataclass(frozen=True)
class GatewayHandle:
    """What the orchestrator needs to know about a started gateway."""

    capture_interface: str          # guest-facing side, where tcpdump listens
    guest_network: str              # e.g. 10.77.0.0/24
    infrastructure: dict[str, str]  # address -> role (the lab resolver, the gateway itself)
    mitm_port: int


@dataclass
class GuestHandle:
    variant: str
    address: str                    # on the experiment network
    agent: Agent
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)


class Gateway(ABC):
    """Lifecycle: ``start`` → ``spawn``… / ``plug``… → ``teardown``.

    ``teardown`` must be safe at any point, more than once, and remove all the gateway made.
    """

    tag: str  # the run-unique prefix of everything it makes
    #: told when a route dies during the run (set before ``start``; see ``plan_routes``)
    on_route_down: Callable[[RouteDown], None] | None = None

    def plan_routes(self, routes: Mapping[str, Route]) -> None:
        """Each variant's route, in the order its guests are started (before ``start``, which
        builds and checks them). Default: a gateway with no routes but the simulated one."""
        other = sorted({r.label for r in routes.values() if r.kind != "simulated"})
        if other:
            from testbed._errors import LabError

            raise LabError(f"this gateway cannot route {', '.join(other)}")

    def vantages(self) -> dict[str, Vantage]:
        """Variant -> where it is measured from, once ``start`` returned (default: none)."""
        return {}

    @abstractmethod
    def start(self) -> GatewayHandle: ...

    @abstractmethod
    def spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        """Start a process on the gateway (tcpdump, mitmdump); the caller stops it."""

    @abstractmethod
    def plug(self, port: str, peer: str, peer_ns: str | None, isolated: bool = True) -> None:
        """A link from the gateway's guest-facing side (its end named ``port``) to ``peer`` in
        namespace ``peer_ns`` (None: the host's). An isolated port reaches the gateway only,
        never another port."""

    @abstractmethod
    def teardown(self) -> None: ...

    def leftovers(self) -> list[str]:
        """What of this run (``tag``) still exists after ``teardown``; default: nothing known."""
        return []


class GuestPool(ABC):
    """Lifecycle: ``prepare`` → ``start_guest``… → ``teardown``.

    ``start_guest`` returns once the guest's agent answers. ``teardown`` must be safe at any
    point, more than once, and remove every guest, link and process the pool made (not the
    gateway's).
    """

    name: str = ""
    start_timeout: float = 60.0   # seconds one guest may take to come up, agent included
    concurrent: bool = False      # guests may be started (and stopped) at the same time

    def prepare(self) -> None:  # noqa: B027 (optional: most pools need none)
        """Pool-wide set-up once the gateway runs (VM networks, bridges); default: none."""

    @abstractmethod
    def start_guest(self, variant: str, index: int, trust: Path | None) -> GuestHandle:
        """Bring up a guest with its desktop and agent; ``trust`` is a CA to install."""

    @abstractmethod
    def teardown(self) -> None: ...
