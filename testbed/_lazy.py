"""A package whose public names load with their module on first use (PEP 562).

    __all__, __getattr__ = lazy_exports(__name__, {"module": ("Name", ...), ...})

Why: `testbed analyze` starts its scans before the stage's heavier imports, and a command
that needs one constant of a package should not load its validator or its database readers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, Sequence[str]]
                 ) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and ``__getattr__`` for ``package``: ``homes`` maps each submodule to the
    names it defines that the package exports."""
    home = {name: module for module, names in homes.items() for name in names}

    def getattr_(name: str) -> Any:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f".{module}", package), name)

    return sorted(home), getattr_
