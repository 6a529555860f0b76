"""Command bodies for the CLI (`testbed validate`, `testbed schema`); they return exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from testbed.scenario.data_schema import KINDS, schema_for
from testbed.scenario.load import check_files, expand


def validate(paths: list[str], allow_outside: Sequence[Path] = ()) -> int:
    """Check files (folders: their YAML files). Problems go to stderr, one a line, and give
    exit code 2; otherwise prints ``ok: N file(s) valid`` to stdout and returns 0. Files
    named stay inside the folder given (a file given alone: its folder) or ``allow_outside``."""
    files = expand(paths)
    if not files:
        print("validate: no files given", file=sys.stderr)
        return 2
    problems = check_files(paths, allow_outside)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 2
    print(f"ok: {len(files)} file(s) valid")
    return 0


def print_schema(kind: str = "scenario") -> int:
    """Print the JSON Schema of ``kind`` (one of ``KINDS``); 2 for an unknown kind."""
    if kind not in KINDS:
        print(
            f"schema: unknown kind {kind!r} (expected one of {', '.join(KINDS)})", file=sys.stderr
        )
        return 2
    print(json.dumps(schema_for(kind), indent=2))
    return 0
