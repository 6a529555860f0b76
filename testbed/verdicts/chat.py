"""Verdicts on chat messages: does a message pass through a place, was it delivered.

A chat expectation names messages by sender, recipient and a part of their text
(``{canary}`` stands for the run's canary). ``passes_through`` passes on evidence of at least
``min_strength`` (strong: the canary on a flow to an endpoint in the place; weak: timing too)
and ``does_not_pass_through`` fails on it; it passes only when the message carried the canary,
the capture is complete, and no flow of the two parties was pinned shut during the message.
``delivered`` / ``not_delivered`` are judged from the receiver's screen: the receiver's next
``chat_wait`` (it showed) or ``chat_absent`` (it did not show) action after the message.
"""

from __future__ import annotations

from typing import Any

from testbed.verdicts.evaluate import FAIL, INCONCLUSIVE, PASS, RunFacts, Verdict
from testbed.verdicts.places import contains, describe

STRENGTH = {"strong": 2, "observed": 2, "weak": 1}
PIN_WINDOW = 10.0  # seconds after a message during which a pinned flow hides its path


def _messages(chat: dict[str, str], facts: RunFacts) -> tuple[list[dict[str, Any]], list[str]]:
    """The chat_send events the expectation names (sent, and not sent)."""
    needle = chat.get("text_contains", "").replace("{canary}", facts.canary)
    sent, unsent = [], []
    for e in facts.events:
        params = e.get("params") or {}
        if (e.get("action") == "chat_send" and e.get("variant") == chat["from"]
                and params.get("to") == chat["to"] and needle in str(params.get("text", ""))):
            if e.get("outcome") == "ok":
                sent.append(e)
            else:
                unsent.append(f"{e.get('outcome')}: {e.get('error')}")
    return sent, unsent


def _label(chat: dict[str, str]) -> str:
    what = f" {chat['text_contains']!r}" if chat.get("text_contains") else ""
    return f"the chat{what} from {chat['from']} to {chat['to']}"


def evaluate_chat(expectation: dict[str, Any], facts: RunFacts) -> Verdict:
    chat, kind = dict(expectation["chat"]), expectation["kind"]
    place = dict(expectation.get("place") or {})
    v = Verdict(id=expectation["id"], variant=chat["from"], kind=kind, place=place,
                status=INCONCLUSIVE, reason="", geoip=facts.geoip, chat=chat)
    sent, unsent = _messages(chat, facts)
    label = _label(chat)
    if not sent:
        v.reason = f"{label} was not sent: " + ("; ".join(unsent) if unsent
                                                 else "no such message in this run")
        return v
    if kind in ("delivered", "not_delivered"):
        return _delivery(v, sent, chat, facts, label)
    return _path(v, expectation, sent, chat, facts, label)


def _delivery(v: Verdict, sent: list[dict[str, Any]], chat: dict[str, str], facts: RunFacts,
              label: str) -> Verdict:
    seen = []
    for message in sent:
        after = [e for e in facts.events if e.get("variant") == chat["to"]
                 and e.get("action") in ("chat_wait", "chat_absent")
                 and float(e.get("start", 0)) >= float(message["start"])]
        if not after:
            v.reason = f"nothing watched {chat['to']}'s screen after {label}"
            return v
        watch = min(after, key=lambda e: float(e["start"]))
        shown = (watch["action"] == "chat_wait" and watch["outcome"] == "ok") or (
            watch["action"] == "chat_absent" and watch["outcome"] == "failed"
            and "showed" in str(watch.get("error")))
        hidden = watch["action"] == "chat_absent" and watch["outcome"] == "ok"
        if not shown and not hidden:
            v.reason = (f"{chat['to']}'s screen could not tell: {watch['action']} "
                        f"{watch['outcome']}: {watch.get('error')}")
            return v
        seen.append(shown)
        v.evidence.append({"kind": "screen", "strength": "strong", "variant": chat["to"],
                           "action": watch["action"], "outcome": watch["outcome"],
                           "time": watch["end"], "screenshots": watch.get("screenshots", {}),
                           "text": f"{chat['to']}'s {watch['action']} "
                                   f"{'saw' if shown else 'did not see'} the message"})
    delivered = all(seen)
    want = v.kind == "delivered"
    v.status = PASS if delivered == want else FAIL
    v.reason = (f"{label} was {'delivered' if delivered else 'not delivered'}: "
                + "; ".join(e["text"] for e in v.evidence))
    return v


def _path(v: Verdict, expectation: dict[str, Any], sent: list[dict[str, Any]],
          chat: dict[str, str], facts: RunFacts, label: str) -> Verdict:
    place = dict(expectation["place"])
    where = describe(place)
    minimum = STRENGTH.get(expectation.get("min_strength") or "weak", 1)
    starts = {float(m["start"]) for m in sent}
    paths = [c for c in facts.chats if c["sender"] == chat["from"]
             and c["recipient"] == chat["to"] and float(c["start"]) in starts]
    evidence = [e for c in paths for e in c["evidence"]
                if STRENGTH.get(e["strength"], 0) >= minimum]
    inside = [e | {"country": facts.places.get(e["address"], {}).get("country")}
              for e in evidence
              if contains(place, e["address"], facts.places.get(e["address"], {}))]
    v.evidence = inside or [e | {"country": facts.places.get(e["address"], {}).get("country")}
                            for e in evidence]
    elsewhere = sorted({f"{e['address']} ({facts.places.get(e['address'], {}).get('country')})"
                        for e in evidence})
    passes = v.kind == "passes_through"
    if inside:
        first = inside[0]
        v.status = PASS if passes else FAIL
        v.reason = (f"{label} passed through {where}: {first['kind']} evidence on "
                    f"{first['address']} from {first['variant']} ({first['detail']})")
        if len(inside) > 1:
            v.reason += f"; and {len(inside) - 1} more item(s)"
        return v
    doubts = [d for variant in (chat["from"], chat["to"]) for d in facts.doubts(variant)]
    if not any(c["has_canary"] for c in paths):
        doubts.append("the message carries no canary, so its content cannot be traced")
    windows = [(s, s + PIN_WINDOW) for s in starts]
    pinned = sorted({str(p.get("sni") or p.get("server")) for p in facts.pinned
                     if any(a <= float(p.get("time", 0)) <= b for a, b in windows)})
    if pinned:
        doubts.append(f"pinned TLS to {', '.join(pinned)} could not be opened")
    if doubts:
        v.status = INCONCLUSIVE
        v.reason = f"no evidence that {label} passed through {where}, and the run cannot " \
            "rule it out: " + "; ".join(dict.fromkeys(doubts))
        return v
    v.status = FAIL if passes else PASS
    v.reason = (f"{label} did not pass through {where}: its evidence points only to "
                + (", ".join(elsewhere) if elsewhere else "no endpoint"))
    return v
