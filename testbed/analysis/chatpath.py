"""Chat paths: which endpoints a chat message went through, and why we think so.

For each chat message (a ``chat_send`` action from events.jsonl), the evidence is:

* canary hits (strong): the run's canary found on a flow of the sender or the recipient to
  endpoint E, at or after the message was sent and before the next canary message of either
  party — the canary is one string per run, so time separates the messages that carry it;
* timing (weak): a burst of the sender or the recipient to E starting within ``window``
  seconds after the message was sent, with no burst in the control windows (after the same
  pair's messages without the canary), so keep-alives are not mistaken for evidence.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from testbed.run.events import Event
from testbed.run.evidence import ChatEvidence

from .evidence import BurstKey, timing_evidence


@dataclass(frozen=True)
class ChatMessage:
    sender: str      # variant
    recipient: str   # variant
    text: str
    start: float
    end: float

    def carries(self, canary: str) -> bool:
        return bool(canary) and canary in self.text


@dataclass
class ChatPath:
    message: ChatMessage
    has_canary: bool
    evidence: list[ChatEvidence] = field(default_factory=list)

    def endpoints(self) -> list[str]:
        return sorted({e.address for e in self.evidence})

    def to_json(self) -> dict[str, Any]:
        m = self.message
        return {"sender": m.sender, "recipient": m.recipient, "text": m.text,
                "start": m.start, "end": m.end, "has_canary": self.has_canary,
                "endpoints": self.endpoints(), "evidence": [e.to_json() for e in self.evidence]}


def messages_from_events(events: Sequence[Event]) -> list[ChatMessage]:
    """The chat messages that were sent (``chat_send`` actions that succeeded)."""
    out = [ChatMessage(sender=e.variant, recipient=str(e.params.get("to", "")),
                       text=str(e.params.get("text", "")), start=float(e.start or 0.0),
                       end=float(e.end or 0.0))
           for e in events if e.action == "chat_send" and e.ok]
    return sorted(out, key=lambda m: m.start)


def chat_paths(messages: Sequence[ChatMessage], canary: str, canary_hits: Sequence[ChatEvidence],
               burst_starts: Mapping[BurstKey, list[float]], window: float = 3.0,
               infrastructure: Collection[str] = ()) -> list[ChatPath]:
    """One path per message. Endpoints in ``infrastructure`` (the lab's resolver) are never
    part of a path; a timing window ends early where the next message of either party starts,
    so that message's traffic is not taken for this one's."""
    paths = []
    carrying = [m for m in messages if m.carries(canary)]
    for m in messages:
        path = ChatPath(message=m, has_canary=m.carries(canary))
        parties = {m.sender, m.recipient}
        if path.has_canary:
            later = [n.start for n in carrying if n.start > m.start
                     and parties & {n.sender, n.recipient}]
            until = min(later, default=float("inf"))
            path.evidence += [h for h in canary_hits
                              if h.variant in parties and m.start <= h.time < until]
        # windows open when the send action starts: delivery (and a TOM peer's upload) can
        # happen before the sender's action is over
        controls = [n.start for n in messages if n is not m and not n.carries(canary)
                    and {n.sender, n.recipient} == parties]
        following = [n.start for n in messages if n.start > m.start
                     and parties & {n.sender, n.recipient}]
        w = min(window, min(following, default=m.start + window) - m.start)
        if path.has_canary and controls and w > 0:
            for variant in sorted(parties):
                path.evidence += timing_evidence(burst_starts, variant, m.start, w,
                                                 control_times=controls)
        path.evidence = [e for e in path.evidence if e.address not in infrastructure]
        paths.append(path)
    return paths
