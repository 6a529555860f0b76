"""Checks shared by every kind of input file: plain placeholders, where a password may go,
references that stay inside the scenario's folder tree, and text without control characters.

Each returns the problems it finds as messages; `testbed.scenario.load` locates them.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from testbed._subcommand import ALLOW_OUTSIDE_FLAG
from testbed.scenario._problem import KeyPath

PLAIN = re.compile(r"[a-z_][a-z0-9_]*")
SECRET = "password"  # the one placeholder whose value must never be logged
# free text: a description, a note, a chat message, typed text; may span lines
MULTILINE_KEYS = frozenset({"description", "note", "text", "type"})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f]")


def plain_placeholders(text: str) -> list[str]:
    """Names of the ``{name}`` placeholders of ``text``; raises ValueError (with a message
    for the user) for anything but a plain lower-case name: format specs (``{canary:>9}``),
    conversions (``{canary!r}``), attributes, indexes, positional ``{}``/``{0}``, unbalanced
    braces. ``{{`` and ``}}`` are literal braces."""
    names = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as e:
        raise ValueError(f"{e} (write {{{{ and }}}} for a literal brace)") from None
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if conv:
            raise ValueError(f"{{{name}!{conv}}}: conversions are not allowed, write {{{name}}}")
        if spec:
            raise ValueError(f"{{{name}:{spec}}}: format specs are not allowed, "
                             f"write {{{name}}}")
        if not PLAIN.fullmatch(name):
            raise ValueError(f"{{{name}}} is not a plain lower-case name such as {{canary}}")
        names.append(name)
    return names


def within(target: Path, roots: Sequence[Path]) -> bool:
    """Whether ``target`` (symlinks resolved) is inside one of ``roots``."""
    try:
        real = target.resolve()
    except (OSError, RuntimeError, ValueError):
        return False
    return any(real.is_relative_to(r.resolve()) for r in roots)


def outside_message(value: str, root: Path) -> str:
    return (f"{value!r} is outside the scenario's folder {root} (references stay inside it; "
            f"pass {ALLOW_OUTSIDE_FLAG} PATH to allow one)")


def strings(data: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str, bool]]:
    """Every string of a document, keys included: (path, text, is_key). Iterative."""
    stack: list[tuple[KeyPath, Any]] = [(path, data)]
    while stack:
        at, value = stack.pop()
        if isinstance(value, str):
            yield at, value, False
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str):
                    yield (*at, k), k, True
                stack.append(((*at, k), v))
        elif isinstance(value, list):
            stack.extend(((*at, i), v) for i, v in enumerate(value))


def control_problems(data: Any) -> list[tuple[KeyPath, str]]:
    """Control characters in text: none at all in names, keys and paths (a newline there
    silently splits or drops an entry); tab and newline only in free text."""
    out = []
    for at, text, is_key in strings(data):
        free = not is_key and any(str(k) in MULTILINE_KEYS for k in at)
        found = (_CONTROL if free else _CONTROL_OR_NEWLINE).search(text)
        if found:
            what = "key" if is_key else "value"
            out.append((at, f"{what} holds the control character {found.group()!r}"
                            + ("" if free else " (names, keys and paths are one line)")))
    return out
