"""Chat verdicts: through which places a message went, and whether it was delivered."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.capture.outcomes import classify
from testbed.run import (
    CaptureCounts,
    ChatRecord,
    EndpointRow,
    Event,
    Expectation,
    Placement,
    TlsRecord,
)
from testbed.verdicts import FAIL, INCONCLUSIVE, PASS, RunFacts, Verdict, evaluate

from ..capture.tls_events import pair

CANARY = "CANARY-abc"
PLACES = {
    "203.0.113.76": {"special": None, "country": "CN", "names": ["mon.cn.lab.example"],
                     "asn": 4808, "organization": "China Unicom", "views": []},
    "198.51.100.247": {"special": None, "country": "EE", "names": ["relay.ee.lab.example"],
                       "views": []},
}
GOOD = {"captured": 100, "dropped": 0, "complete": True}


def send(to: str, text: str, start: float, outcome: str = "ok") -> dict[str, Any]:
    return {"variant": "regular", "action": "chat_send", "outcome": outcome, "start": start,
            "end": start + 1, "params": {"to": to, "text": text}, "error": None}


def watch(variant: str, action: str, start: float, outcome: str = "ok",
          error: str | None = None) -> dict[str, Any]:
    return {"variant": variant, "action": action, "outcome": outcome, "start": start,
            "end": start + 1, "error": error, "screenshots": {action: f"screenshots/{action}.png"}}


def hit(variant: str, address: str, strength: str = "strong", kind: str = "canary-plaintext"
        ) -> dict[str, Any]:
    return {"kind": kind, "variant": variant, "address": address, "port": 80, "proto": "tcp",
            "time": 20.5, "strength": strength, "detail": "found"}


PARTIES = ("regular", "tom-zh", "control", "tom-en")
#: a run whose every party logged in and was heard on the capture (the facts' baseline)
LOGINS = tuple({"variant": v, "action": "login", "outcome": "ok", "start": 1.0, "end": 2.0}
               for v in PARTIES)
HEARD = tuple(EndpointRow.from_json({"variant": v, "address": "198.51.100.247", "proto": "tcp",
                                     "port": 443}) for v in PARTIES)


def facts(events, chats, tls=(), capture=GOOD, heard=HEARD, logins=LOGINS) -> RunFacts:
    """The facts these records (in their JSON form) make, in a run whose parties logged in
    and were heard on the capture (unless ``heard`` / ``logins`` say otherwise)."""
    return RunFacts(endpoints=tuple(heard),
                    places={a: Placement.from_json(p) for a, p in PLACES.items()},
                    capture=CaptureCounts.from_json(capture), geoip=(),
                    events=tuple(Event.from_json(e) for e in (*logins, *events)),
                    chats=tuple(ChatRecord.from_json(c) for c in chats), canary=CANARY,
                    tls=classify(TlsRecord.from_json(p) for p in tls))


def path(to: str, text: str, start: float, evidence) -> dict[str, Any]:
    return {"sender": "regular", "recipient": to, "text": text, "start": start,
            "has_canary": CANARY in text, "evidence": evidence}


def check(expectation: dict[str, Any], f: RunFacts) -> Verdict:
    """The verdict on an expectation written as the manifest holds it."""
    return evaluate(Expectation.from_json(expectation), f)


def expect(kind: str, to: str, place=None, **kw) -> dict[str, Any]:
    return {"id": "x", "variant": "regular", "kind": kind, "place": place or {},
            "chat": {"from": "regular", "to": to, "text_contains": "六四"}} | kw


TEXT = f"六四 {CANARY}"


def test_passes_through_on_canary_evidence():
    f = facts([send("tom-zh", TEXT, 20)], [path("tom-zh", TEXT, 20, [
        hit("regular", "198.51.100.247", kind="canary-decrypted"), hit("tom-zh", "203.0.113.76")])])
    v = check(expect("passes_through", "tom-zh", {"country": "CN"}), f)
    assert v.status == PASS
    assert v.reason.startswith("the chat '六四' from regular to tom-zh passed through CN: "
                               "canary-plaintext evidence on 203.0.113.76 from tom-zh")
    assert [e["address"] for e in v.evidence] == ["203.0.113.76"]


def test_place_by_asn_organisation_host_and_network():
    f = facts([send("tom-zh", TEXT, 20)], [path("tom-zh", TEXT, 20, [hit("tom-zh",
                                                                          "203.0.113.76")])])
    for place in ({"asn": 4808}, {"organization": "unicom"}, {"host": "*.cn.lab.example"},
                  {"network": "203.0.113.0/24"}, {"country": "CN", "asn": 4808}):
        assert check(expect("passes_through", "tom-zh", place), f).status == PASS, place
    assert check(expect("passes_through", "tom-zh", {"country": "CN", "asn": 1}),
                    f).status == FAIL


def test_min_strength_ignores_timing_only_evidence():
    f = facts([send("tom-zh", TEXT, 20)], [path("tom-zh", TEXT, 20, [
        hit("tom-zh", "203.0.113.76", strength="weak", kind="timing")])])
    assert check(expect("passes_through", "tom-zh", {"country": "CN"}), f).status == PASS
    v = check(expect("passes_through", "tom-zh", {"country": "CN"}, min_strength="strong"), f)
    assert v.status == FAIL and "did not pass through CN" in v.reason


def test_does_not_pass_through_needs_a_canary_and_an_open_path():
    evidence = [hit("control", "198.51.100.247", kind="canary-decrypted")]
    ok = facts([send("control", TEXT, 30)], [path("control", TEXT, 30, evidence)])
    v = check(expect("does_not_pass_through", "control", {"country": "CN"}), ok)
    assert v.status == PASS and "points only to 198.51.100.247 (EE)" in v.reason
    plain = "六四 no canary here"
    no_canary = facts([send("control", plain, 30)], [path("control", plain, 30, [])])
    e = expect("does_not_pass_through", "control", {"country": "CN"})
    e["chat"]["text_contains"] = "no canary"
    v = check(e, no_canary)
    assert v.status == INCONCLUSIVE and "carries no canary" in v.reason
    older = facts([send("control", TEXT, 30)], [path("control", TEXT, 30, evidence)],
                  tls=[{"event": "pinned", "sni": "login.example", "time": 32.0}])
    v = check(expect("does_not_pass_through", "control", {"country": "CN"}), older)
    assert v.status == INCONCLUSIVE and \
        "TLS to login.example could not be classified (outcome unclassified)" in v.reason
    lossy = facts([send("control", TEXT, 30)], [path("control", TEXT, 30, evidence)],
                  capture=GOOD | {"dropped": 3})
    assert check(expect("does_not_pass_through", "control", {"country": "CN"}),
                    lossy).status == INCONCLUSIVE


def test_a_message_that_was_not_sent_is_inconclusive():
    f = facts([send("tom-zh", TEXT, 20, outcome="skipped")], [])
    v = check(expect("passes_through", "tom-zh", {"country": "CN"}), f)
    assert v.status == INCONCLUSIVE and v.reason.startswith("the chat '六四' from regular to "
                                                            "tom-zh was not sent: skipped")


def test_delivery_is_judged_from_the_receivers_screen():
    shown = facts([send("tom-zh", TEXT, 20), watch("tom-zh", "chat_wait", 21)], [])
    hidden = facts([send("tom-zh", TEXT, 20), watch("tom-zh", "chat_absent", 21)], [])
    showed_anyway = facts([send("tom-zh", TEXT, 20), watch(
        "tom-zh", "chat_absent", 21, "failed", "image status-received.png showed at 1,2")], [])
    broken = facts([send("tom-zh", TEXT, 20), watch(
        "tom-zh", "chat_wait", 21, "failed", "agent unreachable")], [])
    assert check(expect("delivered", "tom-zh"), shown).status == PASS
    assert check(expect("not_delivered", "tom-zh"), shown).status == FAIL
    v = check(expect("not_delivered", "tom-zh"), hidden)
    assert v.status == PASS and v.evidence[0]["screenshots"]
    assert check(expect("not_delivered", "tom-zh"), showed_anyway).status == FAIL
    v = check(expect("delivered", "tom-zh"), broken)
    assert v.status == INCONCLUSIVE and "could not tell" in v.reason
    nobody = facts([send("tom-zh", TEXT, 20)], [])
    assert "nothing watched" in check(expect("delivered", "tom-zh"), nobody).reason


# (what happened under interception, the retry without it) -> the outcome it leaves
TLS_CASES = {"intercepted": ("established", "none"), "pinned": ("client refused", "ok"),
             "broken": ("client refused", "failed"), "unclassified": ("client refused", "none"),
             "passthrough": ("none", "rule")}


@pytest.mark.parametrize("outcome", sorted(TLS_CASES))
@pytest.mark.parametrize("at", [29.0, 32.0, 45.0])
def test_tls_not_opened_during_the_message_makes_a_path_claim_inconclusive(outcome, at):
    """Only intercepted TLS, or TLS outside the message's window, lets absence settle it."""
    evidence = [hit("control", "198.51.100.247", kind="canary-decrypted")]
    interception, retry = TLS_CASES[outcome]
    tls = pair("10.77.0.10", "login.example", at, interception,
               "none" if retry == "rule" else retry, rule=retry == "rule")
    tls += pair("10.77.0.10", "else.example", 1.0, "established", "none")
    f = facts([send("control", TEXT, 30)], [path("control", TEXT, 30, evidence)], tls=tls)
    assert {o.host: o.outcome for o in f.tls}["login.example"] == outcome
    v = check(expect("does_not_pass_through", "control", {"country": "CN"}), f)
    if outcome == "intercepted" or not 30.0 <= at <= 40.0:
        assert v.status == PASS, v.reason
    else:
        assert v.status == INCONCLUSIVE and f"(outcome {outcome})" in v.reason \
            and "TLS to login.example" in v.reason, v.reason


@pytest.mark.parametrize("kind", ["passes_through", "does_not_pass_through"])
def test_a_canary_message_never_seen_on_the_wire_has_no_observed_path(kind):
    """Sent, but no trace of it anywhere in the capture (seen: a chat sent empty): neither
    claim about its path can be judged."""
    f = facts([send("control", TEXT, 30)], [path("control", TEXT, 30, [])])
    v = check(expect(kind, "control", {"country": "CN"}), f)
    assert v.status == INCONCLUSIVE, v.reason
    assert "no trace of it was found in the capture" in v.reason
