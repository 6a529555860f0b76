"""``analysis/endpoints.json``: every (variant, address, proto, port) the capture shows, where
each address is (:class:`~testbed.run.places.Placement`), the databases that said so, and the
capture's read statistics."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from testbed.run.places import NOWHERE, GeoipDatabase, Placement
from testbed.run.shapes import Record, optional, texts


@dataclass(frozen=True)
class EndpointRow(Record):
    """Traffic between one variant's guest and one remote (address, proto, port). ``port`` is
    the remote port (0 for ICMP and other portless protocols); out = from the guest, in = to
    the guest; bytes are original wire lengths; times are capture timestamps (epoch s)."""

    json_defaults: ClassVar[Mapping[str, Any]] = {"proto": "?", "port": 0}

    variant: str
    address: str
    proto: str
    port: int
    packets_out: int = 0
    packets_in: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0

    @property
    def service(self) -> str:
        return f"{self.proto}/{self.port}"

    @property
    def packets(self) -> int:
        return self.packets_out + self.packets_in

    @property
    def bytes(self) -> int:
        return self.bytes_out + self.bytes_in



_COUNTS = ("frames_read", "packets_read", "packets_attributed", "packets_infrastructure",
           "packets_unattributed", "frames_skipped")


@dataclass(frozen=True)
class ReadStats:
    """How the capture was read: packets_read == attributed + infrastructure + unattributed.
    A count an older analysis did not record is None (and left out of ``to_json``)."""

    frames_read: int | None = None
    packets_read: int | None = None
    packets_attributed: int | None = None
    packets_infrastructure: int | None = None
    packets_unattributed: int | None = None
    frames_skipped: int | None = None
    warnings: tuple[str, ...] | None = None

    @property
    def counts(self) -> dict[str, int]:
        """The counts the analysis recorded, by name, in the order it writes them."""
        out = {k: getattr(self, k) for k in _COUNTS}
        return {k: v for k, v in out.items() if v is not None}

    def to_json(self) -> dict[str, Any]:
        return self.counts | ({} if self.warnings is None else {"warnings": list(self.warnings)})

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ReadStats:
        return cls(**{k: optional(d, k, int) for k in _COUNTS},
                   warnings=texts(d, "warnings") if "warnings" in d else None)


@dataclass(frozen=True)
class CaptureDamage(Record):
    """A capture file (``file``, relative to the run) that breaks off or is missing: nothing of
    it after ``after`` could be read (the time of the last record read before the damage; None:
    nothing of it at all). ``reason`` says what is wrong. Evidence the file would hold after
    ``after`` is lost, so no claim may rest on its absence."""

    file: str
    reason: str
    after: float | None = None

    def covers(self, until: float) -> bool:
        """Whether the damage falls before ``until`` (the end of a claim's time)."""
        return self.after is None or self.after < until

    def sentence(self) -> str:
        if self.after is None:
            return f"{self.file} is {self.reason}"
        when = datetime.datetime.fromtimestamp(self.after, datetime.UTC)
        return (f"{self.file} is damaged ({self.reason}): nothing after "
                f"{when:%H:%M:%S} UTC was read")


@dataclass(frozen=True)
class EndpointsFile(Record):
    json_what = "the endpoint analysis"

    capture: str = ""
    endpoints: tuple[EndpointRow, ...] = ()
    infrastructure: tuple[EndpointRow, ...] = ()
    stats: ReadStats = ReadStats()
    variants: tuple[str, ...] = ()
    places: dict[str, Placement] = field(default_factory=dict)  # address -> placement
    geoip: tuple[GeoipDatabase, ...] = ()
    warnings: tuple[str, ...] = ()
    damage: tuple[CaptureDamage, ...] = ()  # capture files that end early or are missing

    def place(self, address: str) -> Placement:
        """Where ``address`` is (an empty placement when the analysis did not place it)."""
        return self.places.get(address, NOWHERE)
