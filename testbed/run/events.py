"""``events.jsonl`` (one :class:`Event` per action an agent performed) and ``capture/tls.jsonl``
(one :class:`TlsRecord` per TLS handshake, failure or pinned server the capture addon saw)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from testbed.run.shapes import Record, other_keys

#: the TLS outcome of a client's connections to a host (DESIGN.md's words, decided by
#: ``testbed.capture.outcomes``); UNCLASSIFIED where the run cannot tell which
TLS_OUTCOMES = ("intercepted", "passthrough", "untrusted", "pinned", "broken")
UNCLASSIFIED = "unclassified"


@dataclass(frozen=True)
class Event(Record):
    """One action of one variant: when it ran and how it ended (``ok``, ``failed``,
    ``skipped``). ``params`` are the step's parameters (``to``, ``text`` for a chat), ``steps``
    what the agent reports per step, ``screenshots`` name -> file relative to the run."""

    variant: str
    action: str
    session: str | None = None
    start: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    end: float | None = None
    outcome: str | None = None
    error: str | None = None
    steps: tuple[dict[str, Any], ...] = ()
    screenshots: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def timed(self) -> bool:
        """It has both a start and an end (an action, not a note)."""
        return self.start is not None and self.end is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"session": self.session, "variant": self.variant,
                               "action": self.action, "start": self.start,
                               "params": self.params, "end": self.end,
                               "outcome": self.outcome, "error": self.error}
        if self.session is None:
            del out["session"]
        if self.steps or self.screenshots:
            out |= {"steps": list(self.steps), "screenshots": self.screenshots}
        return out

    @classmethod
    def read_otherwise(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        error = d.get("error")  # any value: an agent's error may be a number or an object
        return {"error": None if error is None else str(error)}


@dataclass(frozen=True)
class TlsRecord(Record):
    """One line of the capture addon's TLS log (``testbed.capture.mitm_addon`` lists the
    events; ``testbed.capture.outcomes`` reads them into one outcome per client and host).
    ``conn`` names the connection an event belongs to (older runs wrote none), ``why`` why a
    connection was passed through (``rule`` or ``retry``), ``handshake`` how a passed-through
    handshake ended, ``outcome`` and ``reason`` the word an ``outcome`` line gives. Keys this
    version does not know are kept in ``details``. The optional fields are None where the addon
    did not write them, and then left out of ``to_json``. Older runs wrote ``pinned`` for a
    client that refused the gateway's certificate: read it as that, nothing more."""

    event: str
    client: str | None = None
    server: str | None = None
    port: int | None = None
    sni: str | None = None
    time: float | None = None
    side: str | None = None
    error: str | None = None
    passthrough: bool | None = None
    conn: str | None = None
    why: str | None = None
    handshake: str | None = None
    outcome: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        optional = {"side": self.side, "error": self.error, "passthrough": self.passthrough,
                    "conn": self.conn, "why": self.why, "handshake": self.handshake,
                    "outcome": self.outcome, "reason": self.reason}
        return {"event": self.event, "client": self.client, "server": self.server,
                "port": self.port, "sni": self.sni,
                **{k: v for k, v in optional.items() if v is not None}, **self.details,
                "time": self.time}

    @classmethod
    def read_otherwise(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        return {"details": other_keys(cls, d, but="details")}
