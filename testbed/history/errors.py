"""Errors of the history commands (the CLI prints them on one line)."""

from __future__ import annotations

from testbed._errors import TestbedError


class HistoryError(TestbedError):
    """A history, nightly or schedule operation failed (exit 1)."""


class BadInput(HistoryError):
    """The user gave something unusable: not a run directory, a bad --at time (exit 2)."""

    exit_code = 2
