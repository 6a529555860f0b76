"""What a valid scenario means: frozen records built by `testbed.scenario.load`."""

from __future__ import annotations

import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ExpectationKind = Literal["reaches", "never_reaches"]


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


@dataclass(frozen=True)
class Client:
    """One variant (one guest): its app profile, build profile and account."""

    variant: str
    app: AppProfile
    build_path: Path | None
    user: str
    password_env: str | None = None

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
    """A claim: ``variant`` reaches (or never reaches) ``place``, e.g. ``{"country": "CN"}``."""

    id: str
    variant: str
    kind: ExpectationKind
    place: dict[str, str]
    description: str
    line: int


def default_expectation_id(variant: str, kind: str, place: dict[str, Any]) -> str:
    """E.g. ``regular-never_reaches-country-CN``."""
    where = "-".join(f"{k}-{v}" for k, v in sorted(place.items()))
    return f"{variant}-{kind}-{where}"


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
