"""Chat paths: canary hits are given to the message that carried them, by party and time;
timing evidence needs a quiet control window; infrastructure is never on a path."""

from __future__ import annotations

from testbed.analysis.chatpath import ChatMessage, chat_paths, messages_from_events
from testbed.run.events import Event
from testbed.run.evidence import ChatEvidence

CANARY = "CANARY-1234"


def hit(variant: str, address: str, t: float, kind: str = "canary-decrypted") -> ChatEvidence:
    return ChatEvidence(kind=kind, variant=variant, address=address, port=443, proto="tcp", time=t,
                    strength="strong", detail="d")


MESSAGES = [
    ChatMessage("regular", "tom-zh", "lunch", 10.0, 11.0),
    ChatMessage("regular", "tom-zh", f"六四 {CANARY}", 20.0, 21.0),
    ChatMessage("regular", "control", "lunch", 30.0, 31.0),
    ChatMessage("regular", "control", f"六四 {CANARY}", 40.0, 41.0),
]


def test_canary_hits_go_to_the_message_that_carried_them():
    hits = [hit("regular", "198.51.100.247", 20.2), hit("tom-zh", "203.0.113.76", 20.6, "x"),
            hit("control", "198.51.100.247", 40.5), hit("regular", "198.51.100.247", 40.2)]
    paths = chat_paths(MESSAGES, CANARY, hits, {})
    assert [p.has_canary for p in paths] == [False, True, False, True]
    assert paths[0].evidence == [] and paths[2].evidence == []
    assert paths[1].endpoints() == ["198.51.100.247", "203.0.113.76"]
    assert {(e.variant, e.address) for e in paths[3].evidence} == {
        ("control", "198.51.100.247"), ("regular", "198.51.100.247")}


def test_timing_needs_a_quiet_control_window_and_skips_infrastructure():
    bursts = {
        ("tom-zh", "203.0.113.76", "tcp", 80): [20.4],             # only after the canary
        ("tom-zh", "198.51.100.247", "tcp", 443): [10.2, 20.2],    # keep-alive: both windows
        ("regular", "10.77.0.1", "udp", 53): [20.1],               # the lab resolver
    }
    paths = chat_paths(MESSAGES, CANARY, [], bursts, window=3.0, infrastructure={"10.77.0.1"})
    timing = paths[1].evidence
    assert [(e.kind, e.variant, e.address, e.strength) for e in timing] == [
        ("timing", "tom-zh", "203.0.113.76", "weak")]


def test_messages_come_from_successful_chat_send_events():
    events = [
        {"action": "chat_send", "outcome": "ok", "variant": "regular", "start": 5, "end": 6,
         "params": {"to": "tom-zh", "text": "hi"}},
        {"action": "chat_send", "outcome": "failed", "variant": "regular", "start": 7, "end": 8,
         "params": {"to": "tom-zh", "text": "lost"}},
        {"action": "chat_wait", "outcome": "ok", "variant": "tom-zh", "start": 6, "end": 7},
    ]
    assert messages_from_events([Event.from_json(e) for e in events]) == [
        ChatMessage("regular", "tom-zh", "hi", 5.0, 6.0)]
