"""What a valid scenario means: frozen records built by `testbed.scenario.load`."""

from __future__ import annotations

import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from testbed.run.manifest import (
    CANARY_KINDS,
    CHAT_KINDS,
    DOWNLOAD_KINDS,
    MEDIA_KINDS,
    REACH_KINDS,
)

ExpectationKind = Literal["reaches", "never_reaches", "only_reaches", "passes_through",
                          "does_not_pass_through", "delivered", "not_delivered",
                          "canary_reaches", "canary_never_reaches",
                          "media_passes_through", "media_does_not_pass_through",
                          "redirected_to", "not_redirected_to", "served"]
EXPECTATION_KINDS: tuple[ExpectationKind, ...] = (  # type: ignore[assignment]
    *REACH_KINDS, *CHAT_KINDS, *CANARY_KINDS, *MEDIA_KINDS, *DOWNLOAD_KINDS)


def placeholders(text: str) -> list[str]:
    """Field names of the ``{name}`` placeholders in ``text`` (``str.format`` syntax; ``{{`` is
    a literal brace). Raises ValueError for unbalanced braces."""
    return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with its placeholders replaced from ``values`` (``str.format`` semantics)."""
    return text.format_map(values)


@dataclass(frozen=True)
class AppProfile:
    """How to drive one app: launch command and named actions (lists of step mappings)."""

    name: str
    path: Path
    description: str
    images_dir: Path
    launch: list[str]
    actions: dict[str, list[dict[str, Any]]]
    trust: str = "system"  # the trust store it reads (schema.TRUST_STORES)
    nss_db: str | None = None  # where in the home its own NSS database is (else ~/.pki/nssdb)


ROUTE_KINDS = ("simulated", "internet", "vpn", "drop")
RouteKind = Literal["simulated", "internet", "vpn", "drop"]


@dataclass(frozen=True)
class Route:
    """How a variant's traffic leaves the gateway (docs/routes.md): ``simulated`` (the lab's
    internet), ``internet`` (NAT out of host interface ``uplink``, DNS forwarded to
    ``resolver``), ``vpn`` (a WireGuard tunnel from ``config``; DNS through it, to ``resolver``
    or the config's ``DNS``), ``drop`` (nothing leaves). ``echo``: a URL that answers with the
    caller's address, for the egress as the outside sees it."""

    kind: RouteKind = "simulated"
    config: Path | None = None
    uplink: str = ""
    resolver: str = ""
    echo: str = ""
    line: int = 0
    gateway: str = ""  # internet: the next hop on the uplink (default: its default route's)

    @property
    def label(self) -> str:
        """``vpn cn-shanghai.conf``, ``internet eth1``, ``drop``, ``simulated``."""
        if self.kind == "vpn" and self.config is not None:
            return f"vpn {self.config.name}"
        if self.kind == "internet":
            return f"internet {self.uplink}"
        return self.kind

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "label": self.label}
        for key in ("uplink", "resolver", "gateway", "echo"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.config is not None:
            out["config"] = str(self.config)
        return out


@dataclass(frozen=True)
class Client:
    """One variant (one guest): its app profile, build profile and account."""

    variant: str
    app: AppProfile
    build_path: Path | None
    user: str
    password_env: str | None = None
    vm: dict[str, Any] | None = None  # provider vagrant: box, os, cpus, memory, installer
    profile: Path | None = None  # the app's starting profile (a folder), else a fresh home
    tls: str = "intercept"  # or "passthrough": the gateway leaves its TLS unopened
    route: Route | None = None  # its own route, else the scenario's

    def password(self) -> str:
        """The value of ``password_env`` when set and non-empty, else ``"lab-" + variant``.

        Never log or store the result."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value:
                return value
        return f"lab-{self.variant}"


@dataclass(frozen=True)
class Step:
    """One action of one variant; ``params`` are the step's other keys (``to``, ``text``, ...)."""

    variant: str
    action: str
    params: dict[str, str]
    line: int


@dataclass(frozen=True)
class Session:
    """Steps run in order, or all at once when ``parallel``."""

    name: str
    parallel: bool
    steps: list[Step]


@dataclass(frozen=True)
class Expectation:
    """A claim about a variant (``reaches``/``never_reaches``/``only_reaches`` a place; its
    canary ``canary_reaches``/``canary_never_reaches`` a place) or
    about a chat message (``passes_through``/``does_not_pass_through`` a place,
    ``delivered``/``not_delivered``). ``place`` is the one place (``{}`` for delivery claims),
    ``places`` all of them (``only_reaches`` has several); ``chat`` is ``{from, to,
    text_contains?}``; for chat claims ``variant`` is the sender."""

    id: str
    variant: str
    kind: ExpectationKind
    place: dict[str, Any]
    description: str
    line: int
    places: list[dict[str, Any]] = field(default_factory=list)
    chat: dict[str, str] | None = None
    min_strength: str = ""
    tls: str = ""  # the TLS outcome the claim expects, or none
    call: dict[str, str] | None = None  # media claims: {from, to}; ``variant`` is the caller
    download: str = ""  # download claims: the URL asked for (else any download of the variant)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "variant": self.variant, "kind": self.kind, "place": self.place,
                "places": self.places, "chat": self.chat, "min_strength": self.min_strength,
                "description": self.description, **({"tls": self.tls} if self.tls else {}),
                **({"call": self.call} if self.call else {}),
                **({"download": self.download} if self.download else {})}


def default_expectation_id(variant: str, kind: str, place: Any,
                           chat: dict[str, Any] | None = None) -> str:
    """E.g. ``regular-never_reaches-country-CN``, ``chat-regular-tom-zh-passes_through-...``."""
    places = place if isinstance(place, list) else [place] if isinstance(place, dict) else []
    where = "-".join("-".join(f"{k}-{v}" for k, v in sorted(p.items())) for p in places)
    head = (f"{'call' if kind in MEDIA_KINDS else 'chat'}-{chat.get('from')}-{chat.get('to')}"
            if chat else variant)
    return "-".join(x for x in (head, kind, where) if x).replace("/", "_").replace("*", "any")


@dataclass(frozen=True)
class Scenario:
    """A loaded, valid scenario. Paths are absolute; ``sha256`` is of the file's bytes."""

    name: str
    path: Path
    description: str
    provider: Literal["lab", "vagrant"]
    internet_path: Path | None
    clients: dict[str, Client]
    sessions: list[Session]
    expectations: list[Expectation] = field(default_factory=list)
    sha256: str = ""
    nightly: bool = False
    vagrant: dict[str, Any] | None = None  # provider vagrant: hypervisor, gateway, networks
    route: Route = field(default_factory=Route)  # every client's, unless it names its own

    def route_of(self, variant: str) -> Route:
        """The route of ``variant``: its own, else the scenario's."""
        return self.clients[variant].route or self.route
