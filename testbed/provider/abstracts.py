"""The small interface every provider implements.

A provider only makes things: the gateway (with the simulated or real internet behind it) and
one guest per variant with an agent in its desktop session. Capture start/stop, timeouts,
events and teardown on failure live in the orchestrator (``testbed.orchestrator``).
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from testbed.agent.client import AgentClient


@dataclass
class GatewayHandle:
    """What the orchestrator needs to know about the gateway."""

    capture_interface: str          # guest-facing side, where tcpdump listens
    guest_network: str              # e.g. 10.77.0.0/24
    infrastructure: dict[str, str]  # address -> role (the lab resolver, the gateway itself)
    mitm_port: int = 8080


@dataclass
class GuestHandle:
    variant: str
    address: str                    # on the experiment network
    agent: AgentClient
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)


class Provider(ABC):
    """Lifecycle: ``start_network`` → ``spawn_on_gateway``… → ``start_guest``… → ``teardown``.

    ``teardown`` must be safe to call at any point, more than once, and must remove every
    namespace, link, rule and process the provider made.
    """

    name: str = ""

    @abstractmethod
    def missing(self) -> list[str]:
        """What this machine lacks to run the provider, each with the command that fixes it."""

    @abstractmethod
    def start_network(self) -> GatewayHandle: ...

    @abstractmethod
    def spawn_on_gateway(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        """Start a process on the gateway (tcpdump, mitmdump); the caller stops it."""

    @abstractmethod
    def start_guest(self, variant: str, index: int, trust: Path | None) -> GuestHandle:
        """Bring up a guest with its desktop and agent; ``trust`` is a CA to install."""

    @abstractmethod
    def teardown(self) -> None: ...
