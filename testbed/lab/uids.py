"""The uids of a run's sandboxed processes: one per guest and per daemon row, unique across
runs (by the run's tag), far above any account and below 2**31, the two roles apart."""

from __future__ import annotations

from dataclasses import dataclass

from testbed._errors import LabError


@dataclass(frozen=True)
class UidRange:
    base: int
    per_run: int
    what: str

    def uid(self, tag: str, index: int) -> int:
        """The uid of run ``tag``'s ``index``-th process of this role."""
        if not 0 <= index < self.per_run:
            raise LabError(f"a lab run has at most {self.per_run} {self.what}")
        return self.base + int(tag, 16) * self.per_run + index


GUESTS = UidRange(1_900_000_000, 64, "guests")
DAEMONS = UidRange(1_910_000_000, 64, "daemon rows")  # 65536 tags x 64 < 10,000,000 apart
