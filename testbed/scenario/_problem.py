"""A problem found in a scenario, app profile or data file, located for people."""

from __future__ import annotations

from dataclasses import dataclass

KeyPath = tuple[object, ...]
"""Where a value sits in a YAML document: mapping keys and list indices, outermost first."""


def dotted(path: KeyPath) -> str:
    """``("sessions", 2, "steps", 0, "action")`` -> ``"sessions[2].steps[0].action"``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True, order=True)
class Problem:
    """One problem; ``str()`` gives ``file:line: key: message`` (line and key when known).

    ``file`` is spelled as the user gave it (or derived from it); ``line`` is 1-based;
    ``key`` is a dotted path such as ``sessions[2].steps[0].action``.
    """

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.file, self.line or 0, self.key, self.message)
