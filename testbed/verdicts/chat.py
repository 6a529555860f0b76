"""Verdicts on chat messages: does a message pass through a place, was it delivered.

A chat expectation names messages by sender, recipient and a part of their text
(``{canary}`` stands for the run's canary). ``passes_through`` passes on evidence of at least
``min_strength`` (strong: the canary on a flow to an endpoint in the place; weak: timing too)
and ``does_not_pass_through`` fails on it; it passes only when the message carried the canary,
the capture (packets, decrypted flows, TLS log) is complete and undamaged until the message's
evidence window closes, both parties' traffic was captured, every endpoint of its evidence was
placed, and no TLS the gateway could not open (or classify) started during the message.
``delivered`` / ``not_delivered`` are judged from the receiver's screen: the receiver's next
``chat_wait`` (it showed) or ``chat_absent`` (it did not show) action after the message; that
it did not show proves something only when both parties' actions ran and their traffic was
captured. Without evidence, doubts make any of them inconclusive (``facts.settle``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from testbed.run import INCONCLUSIVE, ChatClaim, Event, Expectation, Verdict
from testbed.verdicts.facts import RunFacts, settle
from testbed.verdicts.places import contains, describe

STRENGTH = {"strong": 2, "observed": 2, "weak": 1}
PIN_WINDOW = 10.0  # seconds after a message during which unopened TLS hides its path


def _messages(chat: ChatClaim, facts: RunFacts) -> tuple[list[Event], list[str]]:
    """The chat_send events the expectation names (sent, and not sent)."""
    needle = (chat.text_contains or "").replace("{canary}", facts.canary)
    sent, unsent = [], []
    for e in facts.events:
        if (e.action == "chat_send" and e.variant == chat.sender
                and e.params.get("to") == chat.recipient
                and needle in str(e.params.get("text", ""))):
            if e.ok:
                sent.append(e)
            else:
                unsent.append(f"{e.outcome}: {e.error}")
    return sent, unsent


def _label(chat: ChatClaim) -> str:
    what = f" {chat.text_contains!r}" if chat.text_contains else ""
    return f"the chat{what} from {chat.sender} to {chat.recipient}"


def evaluate_chat(expectation: Expectation, facts: RunFacts) -> Verdict:
    if expectation.chat is None:
        raise ValueError(f"{expectation.id}: a {expectation.kind} expectation names no chat")
    chat, kind = expectation.chat, expectation.kind
    v = Verdict(id=expectation.id, variant=chat.sender, kind=kind, place=expectation.place,
                status=INCONCLUSIVE, reason="", geoip=facts.geoip, chat=chat)
    sent, unsent = _messages(chat, facts)
    label = _label(chat)
    if not sent:
        return replace(v, reason=f"{label} was not sent: " + (
            "; ".join(unsent) if unsent else "no such message in this run"))
    if kind in ("delivered", "not_delivered"):
        return _delivery(v, sent, chat, facts, label)
    return _path(v, expectation, sent, chat, facts, label)


def _delivery(v: Verdict, sent: list[Event], chat: ChatClaim, facts: RunFacts,
              label: str) -> Verdict:
    seen = []
    evidence: list[dict[str, Any]] = []
    for message in sent:
        after = [e for e in facts.events if e.variant == chat.recipient
                 and e.action in ("chat_wait", "chat_absent")
                 and (e.start or 0.0) >= (message.start or 0.0)]
        if not after:
            return replace(v, evidence=tuple(evidence),
                           reason=f"nothing watched {chat.recipient}'s screen after {label}")
        watch = min(after, key=lambda e: e.start or 0.0)
        shown = (watch.action == "chat_wait" and watch.outcome == "ok") or (
            watch.action == "chat_absent" and watch.outcome == "failed"
            and "showed" in str(watch.error))
        hidden = watch.action == "chat_absent" and watch.outcome == "ok"
        if not shown and not hidden:
            return replace(v, evidence=tuple(evidence),
                           reason=f"{chat.recipient}'s screen could not tell: {watch.action} "
                                     f"{watch.outcome}: {watch.error}")
        seen.append(shown)
        evidence.append({"kind": "screen", "strength": "strong", "variant": chat.recipient,
                         "action": watch.action, "outcome": watch.outcome, "time": watch.end,
                         "screenshots": watch.screenshots,
                         "text": f"{chat.recipient}'s {watch.action} "
                                 f"{'saw' if shown else 'did not see'} the message"})
    delivered = all(seen)
    text = "; ".join(e["text"] for e in evidence)
    doubts = [d for party in (chat.sender, chat.recipient)
              for d in (*facts.silence(party), *facts.doubts(party, capture=False))]
    status = settle(v.kind == "delivered", delivered, doubts)
    if status == INCONCLUSIVE:
        return replace(v, status=status, evidence=tuple(evidence), reason=(
            f"{label} did not show on {chat.recipient}'s screen, and the run cannot tell "
            f"whether it was kept out: {text}; " + "; ".join(dict.fromkeys(doubts))))
    return replace(v, status=status, evidence=tuple(evidence),
                   reason=f"{label} was {'delivered' if delivered else 'not delivered'}: "
                          + text)


def _path(v: Verdict, expectation: Expectation, sent: list[Event], chat: ChatClaim,
          facts: RunFacts, label: str) -> Verdict:
    place = expectation.place
    where = describe(place)
    minimum = STRENGTH.get(expectation.min_strength or "weak", 1)
    starts = {m.start or 0.0 for m in sent}
    paths = [c for c in facts.chats if c.sender == chat.sender
             and c.recipient == chat.recipient and c.start in starts]
    evidence = [e for c in paths for e in c.evidence if STRENGTH.get(e.strength, 0) >= minimum]
    inside = [e for e in evidence if contains(place, e.address, facts.place(e.address))]
    passes = v.kind == "passes_through"
    v = replace(v, evidence=tuple(e.to_json() | {"country": facts.place(e.address).country}
                                  for e in inside or evidence))
    doubts = [d for party in (chat.sender, chat.recipient) for d in facts.silence(party)]
    until = _window_end(sent, chat, facts)
    doubts += [d for party in (chat.sender, chat.recipient)
               for d in facts.doubts(party, until=until, content=True)]
    doubts += facts.unplaced(e.address for e in evidence)
    if not any(c.has_canary for c in paths):
        doubts.append("the message carries no canary, so its content cannot be traced")
    elif not any(c.evidence for c in paths):
        doubts.append("no trace of it was found in the capture (no canary, no timing), so its "
                      "path was not observed")
    windows = [(s, s + PIN_WINDOW) for s in starts]
    doubts += facts.unopened(windows)
    status = settle(passes, bool(inside), doubts)
    if inside:
        first = inside[0]
        reason = (f"{label} passed through {where}: {first.kind} evidence on "
                  f"{first.address} from {first.variant} ({first.detail})")
        if len(inside) > 1:
            reason += f"; and {len(inside) - 1} more item(s)"
        return replace(v, status=status, reason=reason)
    if status == INCONCLUSIVE:
        return replace(v, status=status, reason=(
            f"no evidence that {label} passed through {where}, and the run cannot rule it "
            "out: " + "; ".join(dict.fromkeys(doubts))))
    elsewhere = sorted({f"{e.address} ({facts.place(e.address).country})" for e in evidence})
    return replace(v, status=status, reason=(
        f"{label} did not pass through {where}: its evidence points only to "
        + (", ".join(elsewhere) if elsewhere else "no endpoint")))


def _window_end(sent: list[Event], chat: ChatClaim, facts: RunFacts) -> float:
    """When the evidence windows of the messages close: a canary message's path evidence is
    taken until the next canary message of either party (``analysis.chatpath``), else to the
    end of the capture; a message without the canary has no content to trace, so to the end."""
    parties = {chat.sender, chat.recipient}
    carrying = sorted(c.start for c in facts.chats
                      if c.has_canary and parties & {c.sender, c.recipient})
    end = 0.0
    for m in sent:
        start = m.start or 0.0
        if not (facts.canary and facts.canary in str(m.params.get("text", ""))):
            return math.inf
        end = max(end, min((t for t in carrying if t > start), default=math.inf))
    return end
