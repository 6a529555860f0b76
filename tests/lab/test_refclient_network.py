"""The reference client's network behaviour against the simulated internet's real handlers,
served on loopback: TOM's keyword surveillance and censorship, the relay's chat and call
signalling."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from testbed.lab.internet_map import load_internet
from testbed.lab.refclient.network import Monitor, Network, Relay, Surveillance
from testbed.lab.services.internet import Log, Mailboxes, make_handler

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def internet(tmp_path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "internet.jsonl"
    handler = make_handler(Log(log), Mailboxes(),
                           load_internet(ROOT / "scenarios" / "lab" / "internet-2013.yaml"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", log
    server.shutdown()


def _uploads(log: Path) -> list[dict[str, object]]:
    return [json.loads(r["body"]) for r in map(json.loads, log.read_text().splitlines())
            if r["path"] == "/monitor/upload"]


def _monitor(base: str, accounts: tuple[str, ...] = ()) -> Monitor:
    m = Monitor(Network(), Surveillance(keywords=f"{base}/keywords.txt",
                                        upload=f"{base}/monitor/upload", accounts=accounts))
    assert m.fetch_keywords() == "ok 2 monitored, 1 censored"
    return m


def test_keyword_list_matches_the_data_file(internet):
    base, _ = internet
    m = _monitor(base)
    assert m.monitor == ["六四", "达赖"] and m.censor == ["法轮功"]


def test_monitored_word_is_uploaded_and_delivered(internet):
    base, log = internet
    m = _monitor(base)
    assert m.scan("alice", "chen", "明天谈谈六四 X1", "received") is False
    assert _uploads(log) == [{"from": "alice", "to": "chen", "text": "明天谈谈六四 X1",
                              "direction": "received", "matched": ["六四"],
                              "listed_account": False}]


def test_censored_word_is_uploaded_and_not_delivered(internet):
    base, log = internet
    assert _monitor(base).scan("chen", "alice", "法轮功 news", "sent") is True
    assert _uploads(log)[0]["matched"] == ["法轮功"]


def test_neutral_message_is_left_alone_unless_the_account_is_listed(internet):
    base, log = internet
    assert _monitor(base).scan("alice", "chen", "see you at lunch", "received") is False
    assert _uploads(log) == []
    _monitor(base, accounts=("alice",)).scan("alice", "chen", "see you at lunch", "received")
    assert _uploads(log)[0]["listed_account"] is True


def test_relay_carries_messages_calls_and_presence(internet):
    base, log = internet
    alice = Relay(Network(), f"{base}/chat", "alice")
    bob = Relay(Network(), f"{base}/chat", "bob")
    alice.sign_in("pw-not-sent")
    bob.presence()
    assert alice.roster() == ["alice", "bob"]
    alice.send("bob", "hi 你好")
    alice.signal("bob", "call")
    assert bob.inbox() == [{"from": "alice", "text": "hi 你好"},
                           {"from": "alice", "signal": "call"}]
    assert bob.inbox() == []
    assert "pw-not-sent" not in log.read_text()  # only a digest of the password travels


def test_a_call_is_up_once_the_relay_has_echoed_a_second_of_media():
    import socket

    from testbed.lab.refclient.network import MediaStream

    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind(("127.0.0.1", 0))
    relay.settimeout(5)
    media = MediaStream(f"udp://127.0.0.1:{relay.getsockname()[1]}", 50, "c0ffee")
    media.start()
    try:
        for n in range(50):
            data, peer = relay.recvfrom(2048)
            assert data.startswith(b"MEDIA c0ffee")
            if n < 48:
                assert not media.flowing.is_set()  # not before a second of echoes
            relay.sendto(data, peer)
        assert media.flowing.wait(2) and media.echoed >= 50 and media.sent >= 50
    finally:
        media.stop()
        relay.close()
