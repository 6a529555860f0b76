"""The exceptions testbed raises.

    TestbedError                  every error a user can cause or meet
    ├── ScenarioError             a scenario, app profile or data file is invalid (exit 2)
    ├── LabError                  the embedded lab could not be built, driven or torn down
    ├── ProviderUnavailable       this machine lacks what the scenario's provider needs (exit 2)
    ├── VmError                   a vagrant machine could not be brought up, reached or removed
    ├── AgentError                an agent step failed (timeout, image not found, unreachable)
    ├── CaptureError              tcpdump or mitmdump failed to start or stop
    ├── RunFileError              a run directory's file is damaged: bad JSON, wrong types (exit 2)
    └── AnalysisError             a run's files cannot be analysed
        └── CaptureFormatError    a capture file is not a pcap/pcapng we can read (exit 2)

The CLI prints `str(error)` on one line; errors from other libraries are translated at the
boundary with `raise ... from e`.
"""

from __future__ import annotations


class TestbedError(Exception):
    """Base class: an error with a message written for the user."""

    __test__ = False  # not a pytest test class
    exit_code = 1


class ScenarioError(TestbedError):
    exit_code = 2


class LabError(TestbedError):
    pass


class ProviderUnavailable(TestbedError):
    exit_code = 2


class VmError(TestbedError):
    pass


class AgentError(TestbedError):
    pass


class CaptureError(TestbedError):
    pass


class RunFileError(TestbedError):
    """One file of a run directory cannot be read as what its name says; ``path`` names it and
    ``reason`` says what is wrong (the message is ``f"{path}: {reason}"``)."""

    exit_code = 2

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class AnalysisError(TestbedError):
    pass


class CaptureFormatError(AnalysisError):
    exit_code = 2
