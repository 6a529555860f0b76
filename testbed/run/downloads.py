"""Downloads a variant made (the agent's ``download`` verb), read from ``events.jsonl``: each
one's redirect chain, the host that finally served it and the sha256 of what was served.

The agent writes them as the ``detail`` of a download step (``testbed.agent.download``);
:func:`downloads_of` turns the events into :class:`Download` records, a damaged detail into a
``Shape`` error naming the event."""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from testbed.run.events import Event
from testbed.run.shapes import Record, Shape, within


@dataclass(frozen=True)
class Hop(Record):
    """One request of a download: its URL, the HTTP status, and where a redirect sent it."""

    url: str
    status: int | None = None
    location: str | None = None


@dataclass(frozen=True)
class Download(Record):
    """One download of ``url`` by ``variant`` during ``action`` (started at ``time``):
    ``chain`` every hop, the last one what served it; ``error`` why it did not complete."""

    variant: str
    url: str
    action: str = ""
    time: float | None = None
    chain: tuple[Hop, ...] = ()
    final_url: str | None = None
    final_host: str | None = None
    status: int | None = None
    size: int | None = None
    sha256: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.sha256 is not None

    @property
    def redirected(self) -> bool:
        return len(self.chain) > 1

    def redirected_to(self, host: str) -> bool:
        """It was redirected and ended on a host matching the glob ``host``."""
        return self.redirected and fnmatch.fnmatch((self.final_host or "").lower(), host.lower())

    def sentence(self) -> str:
        """``http://a/x was redirected to http://b/x (302), served 63 bytes, sha256 ab12…``."""
        if not self.ok:
            return f"the download of {self.url} failed: {self.error or 'no answer recorded'}"
        how = (f"was redirected to {self.final_url} ("
               + ", ".join(f"{h.status} from {h.url}" for h in self.chain[:-1]) + ")"
               if self.redirected else f"was served by {self.final_host} (not redirected)")
        return f"{self.url} {how}: {self.size} bytes, sha256 {self.sha256}"


def _download(event: Event, step: Mapping[str, Any], detail: Mapping[str, Any]) -> Download:
    d = dict(detail) | {"variant": event.variant, "action": event.action,
                        "time": step.get("start", event.start)}
    if not isinstance(d.get("url"), str):
        raise Shape("'url' is missing")
    return Download.from_json(d)


def downloads_of(events: Iterable[Event], variant: str | None = None) -> list[Download]:
    """Every download recorded in ``events`` (of ``variant`` only, when given), in order."""
    out = []
    for e in events:
        if variant is not None and e.variant != variant:
            continue
        for i, step in enumerate(e.steps):
            detail = step.get("detail") if isinstance(step, dict) else None
            if isinstance(detail, dict):
                out.append(within(f"{e.variant}'s {e.action} step {i + 1}",
                                  functools.partial(_download, e, step), detail))
    return out
