from __future__ import annotations

import json
from pathlib import Path

import pytest
from mitmproxy import http, tcp
from mitmproxy.test import tflow, tutils

from testbed._errors import AnalysisError
from testbed.analysis.evidence import (
    bursts,
    canary_forms,
    canary_in_flows,
    canary_in_pcap,
    timing_evidence,
)
from testbed.analysis.pcap import PcapReader
from testbed.run.evidence import ChatEvidence
from testbed.run.shapes import Shape

from . import pcapbuild as pb
from .flowbuild import write_flows

T0 = 1_700_000_000.0
GUESTS = {"10.0.0.2": "regular", "10.0.0.3": "tom-en", "fd00::2": "tom-zh"}
CANARY = "cnry-7f3a9c21-e5"


def capture(tmp_path: Path, timed: list[tuple[float, bytes]], name: str = "c.pcap") -> Path:
    frames = [pb.Frame(T0 + t, pb.ether(p)) for t, p in timed]
    return pb.write(tmp_path / name, pb.pcap_bytes(frames))


# -- payload access (PcapReader.iter_payloads) ------------------------------------------
def test_iter_payloads_link_types_and_counters(tmp_path: Path) -> None:
    pkts = [
        pb.tcp("10.0.0.2", "192.0.2.1", 1000, 443, b"", flags=pb.TCP_SYN),
        pb.tcp("10.0.0.2", "192.0.2.1", 1000, 443, b"abc", options=b"\x02\x04\x05\xb4"),
        pb.packet("10.0.0.2", "192.0.2.2", "udp", 1001, 53, b"query"),
        pb.packet("10.0.0.2", "192.0.2.3", "icmp"),  # not yielded
        pb.packet("fd00::2", "2001:db8::1", "udp", 1002, 5000, b"v6", ext=[(0, bytes(6))]),
        pb.tcp("fd00::2", "2001:db8::1", 1003, 443, b"tcp6"),
    ]
    want = [
        (6, 1000, 443, b"", pb.TCP_SYN),
        (6, 1000, 443, b"abc", pb.TCP_PSH_ACK),
        (17, 1001, 53, b"query", 0),
        (17, 1002, 5000, b"v6", 0),
        (6, 1003, 443, b"tcp6", pb.TCP_PSH_ACK),
    ]
    wraps = {pb.ETH: pb.ether, pb.SLL: pb.sll, pb.SLL2: pb.sll2, pb.RAW: lambda p: p}
    for link, wrap in wraps.items():
        frames = [pb.Frame(T0 + i, wrap(p)) for i, p in enumerate(pkts)]
        for fmt, data in (
            ("pcap", pb.pcap_bytes(frames, link)),
            ("pcapng", pb.pcapng_bytes([(link, None)], [(0, f) for f in frames])),
        ):
            reader = PcapReader(pb.write(tmp_path / f"{link}.{fmt}", data))
            got = list(reader.iter_payloads())
            assert [(p[3], p[4], p[5], p[6], p[7]) for p in got] == want, (link, fmt)
            assert got[0][0] == pytest.approx(T0)
            assert got[0][1] == bytes([10, 0, 0, 2]) and len(got[3][2]) == 16
            assert reader.packets == len(pkts) and reader.skipped == 0


def test_iter_payloads_trims_padding_and_skips_fragments(tmp_path: Path) -> None:
    small = pb.packet("10.0.0.2", "192.0.2.1", "udp", 1, 2, b"hi")
    padded = pb.ether(small) + b"\0" * 20  # Ethernet minimum frame padding
    frag = pb.ipv4("10.0.0.2", "192.0.2.1", 17, b"later fragment", frag_offset=100)
    vlan = pb.ether(pb.tcp("10.0.0.2", "192.0.2.1", 3, 4, b"tagged"), tags=(0x8100,))
    frames = [pb.Frame(T0, padded), pb.Frame(T0, pb.ether(frag)), pb.Frame(T0, vlan)]
    reader = PcapReader(pb.write(tmp_path / "p.pcap", pb.pcap_bytes(frames)))
    assert [p[6] for p in reader.iter_payloads()] == [b"hi", b"tagged"]
    assert reader.packets == 3


def test_iter_payloads_damage_warns(tmp_path: Path) -> None:
    frames = [
        pb.Frame(T0 + i, pb.ether(pb.tcp("10.0.0.2", "192.0.2.1", 1, 2, b"x" * i)))
        for i in range(5)
    ]
    path = pb.write(tmp_path / "d.pcap", pb.pcap_bytes(frames)[:-3])
    reader = PcapReader(path)
    assert len(list(reader.iter_payloads())) == 4
    assert len(reader.warnings) == 1 and "truncated" in reader.warnings[0]


# -- canary in the capture ----------------------------------------------------------------
def test_canary_split_across_segments(tmp_path: Path) -> None:
    msg = b'{"to":"bob","text":"hello ' + CANARY.encode() + b'"}'
    cut = msg.index(b"7f3a")
    path = capture(
        tmp_path,
        [
            (0.0, pb.tcp("10.0.0.2", "203.0.113.9", 50000, 443, msg[:cut])),
            (0.1, pb.tcp("10.0.0.2", "198.51.100.1", 50001, 443, b"unrelated")),
            (0.2, pb.tcp("203.0.113.9", "10.0.0.2", 443, 50000, b"ack")),
            (0.3, pb.tcp("10.0.0.2", "203.0.113.9", 50000, 443, msg[cut:])),
        ],
    )
    (ev,) = canary_in_pcap(path, GUESTS, CANARY)
    assert (ev.kind, ev.variant, ev.address, ev.port, ev.proto, ev.strength) == (
        "canary-plaintext",
        "regular",
        "203.0.113.9",
        443,
        "tcp",
        "strong",
    )
    assert ev.time == pytest.approx(T0 + 0.3)
    assert "1 time(s)" in ev.detail and "10.0.0.2" in ev.detail


def test_canary_over_three_segments_and_no_double_count(tmp_path: Path) -> None:
    c = CANARY.encode()
    data = c + c  # two hits, one crossing each boundary below
    parts = [data[:5], data[5:9], data[9:20], data[20:]]
    timed = [(i * 0.1, pb.tcp("fd00::2", "2001:db8::7", 1, 5222, p)) for i, p in enumerate(parts)]
    timed.append((1.0, pb.tcp("fd00::2", "2001:db8::7", 2, 5222, c)))  # second connection
    ev, second = canary_in_pcap(capture(tmp_path, timed), GUESTS, CANARY)  # one per connection
    assert (ev.variant, ev.address, ev.port) == ("tom-zh", "2001:db8::7", 5222)
    assert "2 time(s)" in ev.detail and "1 time(s)" in second.detail
    assert ev.time == pytest.approx(T0 + 0.2) and second.time == pytest.approx(T0 + 1.0)


def test_canary_inbound_or_non_guest_is_not_evidence(tmp_path: Path) -> None:
    c = CANARY.encode()
    path = capture(
        tmp_path,
        [
            (0.0, pb.tcp("203.0.113.9", "10.0.0.2", 443, 1, c)),  # to the guest
            (0.1, pb.tcp("10.9.9.9", "203.0.113.9", 1, 443, c)),  # not a guest
        ],
    )
    assert canary_in_pcap(path, GUESTS, CANARY) == []


def test_canary_encodings(tmp_path: Path) -> None:
    canary = "聊天-42-cnry"
    forms = dict(canary_forms(canary))
    assert set(forms) >= {"utf-8", "json-escaped", "percent-encoded", "utf-16-le"}
    body = b'{"text":"' + json.dumps(canary)[1:-1].encode() + b'"}'
    path = capture(
        tmp_path,
        [
            (0.0, pb.packet("10.0.0.3", "192.0.2.5", "udp", 1, 9000, body)),
            (0.5, pb.tcp("10.0.0.3", "192.0.2.6", 1, 80, b"GET /?q=" + forms["percent-encoded"])),
        ],
    )
    evs = canary_in_pcap(path, GUESTS, canary)
    assert [(e.address, e.proto) for e in evs] == [("192.0.2.5", "udp"), ("192.0.2.6", "tcp")]
    assert "json-escaped" in evs[0].detail and "percent-encoded" in evs[1].detail
    with pytest.raises(AnalysisError):
        canary_forms("")


# -- canary in mitmproxy flows ------------------------------------------------------------
def _http(client: str, server: tuple[str, int], **req: object) -> http.HTTPFlow:
    c = tflow.tclient_conn()
    c.peername = (client, 50000)
    s = tflow.tserver_conn()
    s.address = server
    resp_content = req.pop("resp_content", b"ok")
    r = tutils.treq(host=server[0], port=server[1], timestamp_start=T0 + 5, **req)
    return tflow.tflow(client_conn=c, server_conn=s, req=r, resp=tutils.tresp(content=resp_content))


def test_canary_in_flows(tmp_path: Path) -> None:
    c = CANARY.encode()
    t = tflow.ttcpflow(messages=[tcp.TCPMessage(True, b"MSG " + c, T0 + 9)])
    t.client_conn.peername = ("10.0.0.3", 40000)
    t.server_conn.address = ("198.51.100.20", 5222)
    ws = _http("10.0.0.2", ("203.0.113.9", 443), content=b"{}")
    ws.websocket = tflow.twebsocket()
    ws.websocket.messages[0].content = b"ws " + c
    for i, m in enumerate(ws.websocket.messages):
        m.timestamp = T0 + 6 + i
    flows = [
        _http("10.0.0.2", ("203.0.113.9", 443), content=b'{"text":"' + c + b'"}'),
        _http("10.0.0.2", ("203.0.113.9", 443), path=b"/send?m=" + c, content=b""),
        ws,
        _http("10.0.0.2", ("192.0.2.44", 443), content=b"x", resp_content=b"echo " + c),
        _http("10.9.9.9", ("192.0.2.45", 443), content=c),  # not a guest
        _http("10.0.0.2", ("192.0.2.46", 443), content=b"nothing here"),
        t,
    ]
    evs = canary_in_flows(write_flows(tmp_path / "flows.mitm", flows), GUESTS, CANARY)
    by = {(e.variant, e.address, e.port): e for e in evs}  # endpoints with a hit
    assert set(by) == {
        ("regular", "203.0.113.9", 443),
        ("regular", "192.0.2.44", 443),
        ("tom-en", "198.51.100.20", 5222),
    }
    mains = [e for e in evs if (e.variant, e.address, e.port) == ("regular", "203.0.113.9", 443)]
    assert len(mains) == 3  # one item per flow, so messages sharing the canary stay apart
    for main in mains:
        assert main.kind == "canary-decrypted" and main.strength == "strong"
        assert main.proto == "tcp" and "1 decrypted flow(s)" in main.detail
    details = " ".join(m.detail for m in mains)
    for place in ("request body", "URL", "WebSocket message from client"):
        assert place in details
    assert min(m.time for m in mains) == pytest.approx(T0)
    assert "response body" in by[("regular", "192.0.2.44", 443)].detail
    assert by[("tom-en", "198.51.100.20", 5222)].time == pytest.approx(T0 + 9)


@pytest.mark.parametrize("canaries", [1, 2, 5])
def test_a_long_lived_stream_gives_one_hit_per_canary_message(tmp_path: Path,
                                                             canaries: int) -> None:
    """An XMPP session is one TCP stream for the app's whole life: each message that carries
    the canary is an item at its own time (a later chat is not dated at the first one)."""
    c = CANARY.encode()
    msgs = [tcp.TCPMessage(True, b"<presence/>", T0)]
    for i in range(canaries):
        msgs += [tcp.TCPMessage(True, b"<message><body>hi " + c + b"</body></message>",
                                T0 + 10 * (i + 1)),
                 tcp.TCPMessage(False, b"<r/>", T0 + 10 * (i + 1) + 1)]
    t = tflow.ttcpflow(messages=msgs)
    t.client_conn.peername = ("10.0.0.3", 40000)
    t.server_conn.address = ("198.51.100.20", 5223)
    evs = canary_in_flows(write_flows(tmp_path / "flows.mitm", [t]), GUESTS, CANARY)
    assert [e.time for e in evs] == pytest.approx([T0 + 10 * (i + 1) for i in range(canaries)])
    assert all(e.port == 5223 and "TCP message from client" in e.detail for e in evs)


def test_canary_in_damaged_flows(tmp_path: Path) -> None:
    c = CANARY.encode()
    flow = _http("10.0.0.2", ("203.0.113.9", 443), content=c)
    path = write_flows(tmp_path / "flows.mitm", [flow] * 2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])
    with pytest.raises(AnalysisError, match=r"flows\.mitm: truncated"):
        canary_in_flows(path, GUESTS, CANARY)
    warnings: list[str] = []
    (ev,) = canary_in_flows(path, GUESTS, CANARY, on_warning=warnings.append)
    assert "1 time(s)" in ev.detail and len(warnings) == 1
    path.write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(20))  # a pcap
    with pytest.raises(AnalysisError, match=r"flows\.mitm: not a readable mitmproxy flow file"):
        canary_in_flows(path, GUESTS, CANARY, on_warning=warnings.append)


def test_evidence_json_round_trip() -> None:
    ev = ChatEvidence("timing", "tom-en", "192.0.2.1", 443, "tcp", T0, "weak", "a burst")
    data = json.loads(json.dumps(ev.to_json()))
    assert ChatEvidence.from_json(data) == ev
    with pytest.raises(Shape, match="'variant' is missing"):
        ChatEvidence.from_json({"kind": "timing"})


# -- timing ---------------------------------------------------------------------------
def timing_capture(tmp_path: Path) -> Path:
    timed: list[tuple[float, bytes]] = []
    for k in range(0, 60, 3):  # keep-alive every 3 s to 192.0.2.1:443 (UDP)
        timed.append((k + 0.5, pb.packet("10.0.0.3", "192.0.2.1", "udp", 1, 443, b"ka")))
    # the chat event at t=31: a new connection to 203.0.113.9:443, 0.4 s later
    timed.append((31.4, pb.tcp("10.0.0.3", "203.0.113.9", 50000, 443, b"", flags=pb.TCP_SYN)))
    for i in range(5):
        timed.append((31.45 + i * 0.05, pb.tcp("10.0.0.3", "203.0.113.9", 50000, 443, b"d")))
    # an endpoint that talks in both the event and the control window (t=11)
    for t in (11.2, 32.0):
        timed.append((t, pb.tcp("10.0.0.3", "198.51.100.3", 50001, 80, b"poll")))
    # another guest, same time: not this variant
    timed.append((31.5, pb.tcp("10.0.0.2", "198.51.100.99", 50002, 443, b"x")))
    timed.sort()
    return capture(tmp_path, timed)


def test_bursts(tmp_path: Path) -> None:
    b = bursts(timing_capture(tmp_path), GUESTS)
    assert len(b[("tom-en", "192.0.2.1", "udp", 443)]) == 20  # 3 s apart > idle gap
    assert b[("tom-en", "203.0.113.9", "tcp", 443)] == [pytest.approx(T0 + 31.4)]
    assert b[("tom-en", "198.51.100.3", "tcp", 80)] == [
        pytest.approx(T0 + 11.2),
        pytest.approx(T0 + 32.0),
    ]
    assert ("regular", "198.51.100.99", "tcp", 443) in b
    # with a long idle gap the keep-alives are one burst
    assert (
        len(
            bursts(timing_capture(tmp_path), GUESTS, idle_gap=10)[
                ("tom-en", "192.0.2.1", "udp", 443)
            ]
        )
        == 1
    )


def test_syn_starts_a_burst(tmp_path: Path) -> None:
    timed = [
        (0.0, pb.tcp("10.0.0.2", "192.0.2.9", 1, 443, b"a")),
        (0.2, pb.tcp("10.0.0.2", "192.0.2.9", 2, 443, b"", flags=pb.TCP_SYN)),
        (0.3, pb.tcp("10.0.0.2", "192.0.2.9", 2, 443, b"", flags=pb.TCP_ACK)),
    ]
    b = bursts(capture(tmp_path, timed), GUESTS)
    assert b[("regular", "192.0.2.9", "tcp", 443)] == [pytest.approx(T0), pytest.approx(T0 + 0.2)]


def test_timing_keepalive_is_not_evidence(tmp_path: Path) -> None:
    b = bursts(timing_capture(tmp_path), GUESTS)
    evs = timing_evidence(b, "tom-en", T0 + 31.0, 3.0, [T0 + 10.0])
    assert [(e.address, e.port, e.proto) for e in evs] == [("203.0.113.9", 443, "tcp")]
    (ev,) = evs
    assert ev.kind == "timing" and ev.strength == "weak" and ev.variant == "tom-en"
    assert ev.time == pytest.approx(T0 + 31.4)
    assert "0.40 s after" in ev.detail and "1 control window" in ev.detail
    # without a control window the keep-alive and the poller would count too
    loose = timing_evidence(b, "tom-en", T0 + 31.0, 3.0)
    assert {e.address for e in loose} == {"203.0.113.9", "192.0.2.1", "198.51.100.3"}
    assert all("no control window" in e.detail for e in loose)
    # a burst before the event, or after the window, is not evidence
    assert timing_evidence(b, "tom-en", T0 + 31.5, 3.0, [T0 + 10.0]) == []
    assert timing_evidence(b, "tom-en", T0 + 27.0, 3.0, [T0 + 10.0]) == []
    # a control window containing the chat endpoint's burst disqualifies it
    assert timing_evidence(b, "tom-en", T0 + 31.0, 3.0, [T0 + 30.0]) == []
