"""The placeholders of a lab daemon's config files (``daemon.files`` of an internet data file).

A config file of real server software is full of braces of its own (nginx blocks, Lua tables,
JSON), so in these files, and only there, a placeholder is ``{name}`` with a plain lower-case
name (``{address}``, ``{cert}``, …, `testbed.scenario.data_schema.DAEMON_PLACEHOLDERS`);
``{{name}}`` writes a literal ``{name}``; every other brace is the file's own text. The
daemon's command line uses the placeholders of every other input (`_checks.plain_placeholders`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

_PLACEHOLDER = re.compile(r"\{\{([a-z_][a-z0-9_]*)\}\}|\{([a-z_][a-z0-9_]*)\}")


def placeholders(text: str) -> Iterator[tuple[int, str]]:
    """(line number, name) of every placeholder of ``text``, in order."""
    for m in _PLACEHOLDER.finditer(text):
        if m.group(2) is not None:
            yield text.count("\n", 0, m.start()) + 1, m.group(2)


def render(text: str, values: Mapping[str, str]) -> str:
    """``text`` with its placeholders filled in; an unknown one is a KeyError (validation
    refuses it first)."""
    def one(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return "{" + m.group(1) + "}"
        return values[m.group(2)]

    return _PLACEHOLDER.sub(one, text)
