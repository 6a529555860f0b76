"""One way to run a lab command: in a namespace or not, bounded in time, a failure a LabError."""

from __future__ import annotations

from testbed import _command as command
from testbed._errors import LabError

COMMAND_SECONDS = 30


def sh(*argv: str, ns: str | None = None, check: bool = True, input: str | None = None) -> str:
    """Run a command (in namespace ``ns``); a failure becomes a LabError quoting stderr."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    return command.run(cmd, LabError, COMMAND_SECONDS, check=check, input=input)
