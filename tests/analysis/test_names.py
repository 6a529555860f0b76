from __future__ import annotations

import json
import random
import ssl
import struct
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import tflow, tutils

from testbed._errors import AnalysisError, CaptureFormatError
from testbed.analysis.names import (
    NameIndex,
    client_hello_sni,
    dns_answers,
    extract_names,
    names_from_flows,
)
from testbed.analysis.payloads import handshake_message

from . import pcapbuild as pb
from .flowbuild import write_flows

T0 = 1_700_000_000.0
GUESTS = {"10.0.0.2": "regular", "10.0.0.3": "tom-en", "fd00::2": "tom-zh"}
RESOLVER = "10.0.0.1"


def client_hello(server_hostname: str | None) -> bytes:
    """The bytes of a real ClientHello from Python's ssl module."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if server_hostname is None:
        ctx.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def capture(tmp_path: Path, packets: list[bytes], link: int = pb.ETH, name: str = "c.pcap") -> Path:
    wrap = {pb.ETH: pb.ether, pb.SLL: pb.sll, pb.RAW: lambda p: p}[link]
    frames = [pb.Frame(T0 + i * 0.01, wrap(p)) for i, p in enumerate(packets)]
    return pb.write(tmp_path / name, pb.pcap_bytes(frames, link))


def dns_to(guest: str, payload: bytes) -> bytes:
    resolver = "fd00::1" if ":" in guest else RESOLVER
    return pb.packet(resolver, guest, "udp", 53, 40000, payload)


CHAIN = pb.dns_response(
    "www.example.test",
    [
        ("www.example.test", "CNAME", "edge.cdn.test"),
        ("edge.cdn.test", "CNAME", "e1.cdn.test"),
        ("e1.cdn.test", "A", "203.0.113.5"),
        ("e1.cdn.test", "A", "203.0.113.6"),
    ],
)


def test_dns_cname_chain(tmp_path: Path) -> None:
    index = extract_names(capture(tmp_path, [dns_to("10.0.0.2", CHAIN)]), GUESTS)
    want = ["e1.cdn.test", "edge.cdn.test", "www.example.test"]
    assert index.names_for("203.0.113.5") == want
    assert index.names_for("203.0.113.6") == want
    assert index["203.0.113.5"] == {(n, "dns") for n in want}
    assert index.variants_for("203.0.113.5", "www.example.test") == ["regular"]
    assert index.addresses_for("WWW.Example.Test.") == ["203.0.113.5", "203.0.113.6"]
    assert index.names_for("203.0.113.5", variant="tom-en") == []
    assert index.warnings == []


def test_dns_aaaa_over_ipv6_and_per_variant(tmp_path: Path) -> None:
    aaaa = pb.dns_response(
        "v6.example.test", [("v6.example.test", "AAAA", "2001:db8::5")], qtype=28
    )
    other = pb.dns_response("www.example.test", [("www.example.test", "A", "203.0.113.5")])
    path = capture(
        tmp_path, [dns_to("fd00::2", aaaa), dns_to("10.0.0.3", other), dns_to("10.0.0.2", CHAIN)]
    )
    index = extract_names(path, GUESTS)
    assert index.names_for("2001:db8:0::5") == ["v6.example.test"]
    assert index.variants_for("2001:db8::5", "v6.example.test", "dns") == ["tom-zh"]
    assert index.variants_for("203.0.113.5", "www.example.test") == ["regular", "tom-en"]
    assert index.names_for("203.0.113.5", variant="tom-en") == ["www.example.test"]


def test_dns_compression_pointers() -> None:
    # question "a.test" at offset 12; answer owner = pointer to it; CNAME -> "b" + ptr(test)
    msg = struct.pack("!HHHHHH", 1, 0x8180, 1, 2, 0, 0) + b"\x01a\x04test\x00" + b"\x00\x01\x00\x01"
    cname_rdata = b"\x01b\xc0\x0e"
    msg += b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, len(cname_rdata)) + cname_rdata
    b_at = len(msg) - len(cname_rdata)
    msg += (
        struct.pack("!H", 0xC000 | b_at) + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 9])
    )
    assert sorted(dns_answers(msg)) == [
        ("a.test", bytes([192, 0, 2, 9])),
        ("b.test", bytes([192, 0, 2, 9])),
    ]


def test_dns_pointer_loop_and_queries_are_ignored() -> None:
    loop = struct.pack("!HHHHHH", 1, 0x8180, 1, 1, 0, 0) + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    loop += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes(4)
    assert dns_answers(loop) == []
    query = bytearray(CHAIN)
    query[2] &= 0x7F  # QR bit off
    assert dns_answers(bytes(query)) == []
    cyclic = pb.dns_response(
        "x.test",
        [
            ("x.test", "CNAME", "y.test"),
            ("y.test", "CNAME", "x.test"),
            ("y.test", "A", "192.0.2.1"),
        ],
    )
    assert sorted(n for n, _ in dns_answers(cyclic)) == ["x.test", "y.test"]


def test_dns_over_tcp(tmp_path: Path) -> None:
    framed = struct.pack("!H", len(CHAIN)) + CHAIN
    pkt = pb.tcp(RESOLVER, "10.0.0.2", 53, 40001, framed)
    index = extract_names(capture(tmp_path, [pkt]), GUESTS)
    assert "www.example.test" in index.names_for("203.0.113.6")


def test_sni_one_segment(tmp_path: Path) -> None:
    hello = client_hello("chat.example.test")
    assert client_hello_sni(hello[5:]) == "chat.example.test"
    pkts = [
        pb.tcp("10.0.0.2", "203.0.113.9", 50000, 443, b"", flags=pb.TCP_SYN),
        pb.tcp("10.0.0.2", "203.0.113.9", 50000, 443, hello),
        pb.tcp("fd00::2", "2001:db8::9", 50001, 443, client_hello("v6.example.test")),
    ]
    index = extract_names(capture(tmp_path, pkts), GUESTS)
    assert index["203.0.113.9"] == {("chat.example.test", "sni")}
    assert index.variants_for("203.0.113.9", "chat.example.test") == ["regular"]
    assert index.names_for("2001:db8::9") == ["v6.example.test"]
    assert index.variants_for("2001:db8::9", "v6.example.test") == ["tom-zh"]


@pytest.mark.parametrize("cuts", [(100,), (3,), (5,), (300, 301), (40, 200, 250)])
def test_sni_split_over_segments(tmp_path: Path, cuts: tuple[int, ...]) -> None:
    hello = client_hello("split.example.test")
    pieces = [hello[a:b] for a, b in zip((0, *cuts), (*cuts, len(hello)), strict=True)]
    pkts = []
    for i, piece in enumerate(pieces):
        pkts.append(pb.tcp("10.0.0.3", "198.51.100.4", 50000, 443, piece))
        # other traffic interleaved, incl. the server direction of the same connection
        pkts.append(pb.tcp("198.51.100.4", "10.0.0.3", 443, 50000, b"", flags=pb.TCP_ACK))
        pkts.append(pb.tcp("10.0.0.2", "192.0.2.50", 50100 + i, 80, b"x" * 10))
    index = extract_names(capture(tmp_path, pkts, link=pb.SLL), GUESTS)
    assert index.names_for("198.51.100.4") == ["split.example.test"]
    assert index.variants_for("198.51.100.4", "split.example.test", "sni") == ["tom-en"]


def padded_hello(hello: bytes, extra: int) -> bytes:
    """`hello` grown by a padding extension, like a post-quantum ClientHello (> 1 MSS)."""
    body = hello[9:]
    p = 34
    p += 1 + body[p]
    p += 2 + int.from_bytes(body[p : p + 2], "big")
    p += 1 + body[p]
    ext_len = int.from_bytes(body[p : p + 2], "big")
    pad = struct.pack("!HH", 21, extra) + bytes(extra)
    body = body[:p] + struct.pack("!H", ext_len + len(pad)) + body[p + 2 :] + pad
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def test_large_client_hello_over_two_full_segments(tmp_path: Path) -> None:
    hello = padded_hello(client_hello("pq.example.test"), 1400)
    assert len(hello) > 1448 and client_hello_sni(hello[5:]) == "pq.example.test"
    pkts = [
        pb.tcp("10.0.0.2", "192.0.2.8", 50000, 443, hello[:1448]),
        pb.tcp("10.0.0.2", "192.0.2.8", 50000, 443, hello[1448:]),
    ]
    index = extract_names(capture(tmp_path, pkts), GUESTS)
    assert index.names_for("192.0.2.8") == ["pq.example.test"]


def test_sni_split_across_tls_records(tmp_path: Path) -> None:
    """A ClientHello carried in two TLS records (handshake fragmentation)."""
    hello = client_hello("frag.example.test")
    body = hello[5:]
    rec = lambda b: b"\x16\x03\x01" + struct.pack("!H", len(b)) + b  # noqa: E731
    data = rec(body[:60]) + rec(body[60:])
    index = extract_names(
        capture(tmp_path, [pb.tcp("10.0.0.2", "192.0.2.7", 1, 443, data)]), GUESTS
    )
    assert index.names_for("192.0.2.7") == ["frag.example.test"]


@pytest.mark.parametrize("name", ["chat.example.test", "a.b", "x" * 60 + ".test", None])
def test_sni_parser_agrees_with_mitmproxy(name: str | None) -> None:
    from mitmproxy.tls import ClientHello

    hs = handshake_message(client_hello(name))
    assert hs
    assert client_hello_sni(hs) == (ClientHello(hs[4:]).sni or "")
    padded = handshake_message(padded_hello(client_hello(name), 3000))
    assert padded and client_hello_sni(padded) == (ClientHello(padded[4:]).sni or "")


def test_no_sni(tmp_path: Path) -> None:
    pkts = [pb.tcp("10.0.0.2", "192.0.2.7", 1, 443, client_hello(None))]
    assert len(extract_names(capture(tmp_path, pkts), GUESTS)) == 0


def test_http_host_in_plaintext(tmp_path: Path) -> None:
    req = b"GET /keywords.txt HTTP/1.1\r\nUser-Agent: x\r\nHOST: dl.example.test:8080\r\n\r\n"
    ip_host = b"GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n"
    pkts = [
        pb.tcp("10.0.0.2", "192.0.2.80", 50000, 8080, req),
        pb.tcp("10.0.0.2", "192.0.2.1", 50001, 80, ip_host),
    ]
    index = extract_names(capture(tmp_path, pkts), GUESTS)
    assert index["192.0.2.80"] == {("dl.example.test", "http-host")}
    assert "192.0.2.1" not in index


def test_garbage_payloads_never_raise(tmp_path: Path) -> None:
    rng = random.Random(3)
    hello = client_hello("fuzz.example.test")
    pkts = []
    for i in range(len(hello)):  # every truncation of a ClientHello, on its own connection
        pkts.append(pb.tcp("10.0.0.2", "192.0.2.9", 20000 + i, 443, hello[:i]))
    for i in range(len(CHAIN)):  # every truncation of a DNS response
        pkts.append(dns_to("10.0.0.2", CHAIN[:i]))
    for _ in range(400):  # mutations and random bytes
        h = bytearray(hello)
        for _ in range(rng.randint(1, 6)):
            h[rng.randrange(5, len(h))] = rng.randrange(256)
        pkts.append(pb.tcp("10.0.0.3", "192.0.2.10", rng.randrange(1, 65535), 443, bytes(h)))
        d = bytearray(CHAIN)
        for _ in range(rng.randint(1, 6)):
            d[rng.randrange(len(d))] = rng.randrange(256)
        pkts.append(dns_to("10.0.0.3", bytes(d)))
        junk = rng.randbytes(rng.randrange(1, 300))
        pkts.append(pb.tcp("10.0.0.2", "192.0.2.11", 1, 443, b"\x16\x03\x01" + junk))
        pkts.append(dns_to("10.0.0.2", junk))
        pkts.append(pb.tcp("10.0.0.2", "192.0.2.12", 2, 80, b"GET " + junk))
        pkts.append(pb.tcp(RESOLVER, "10.0.0.2", 53, 3, junk))
    index = extract_names(capture(tmp_path, pkts), GUESTS)
    json.dumps(index.to_json())
    for address in index:
        for name in index.names_for(address):
            assert name.isascii() and name.isprintable() and " " not in name


def test_damaged_capture_keeps_names(tmp_path: Path) -> None:
    path = capture(tmp_path, [dns_to("10.0.0.2", CHAIN), pb.tcp("10.0.0.2", "192.0.2.7", 1, 2)])
    path.write_bytes(path.read_bytes()[:-5])
    seen: list[str] = []
    index = extract_names(path, GUESTS, on_warning=seen.append)
    assert index.names_for("203.0.113.5")
    assert len(index.warnings) == 1 and seen == index.warnings
    assert "c.pcap: truncated" in index.warnings[0]


def test_not_a_capture(tmp_path: Path) -> None:
    with pytest.raises(CaptureFormatError):
        extract_names(pb.write(tmp_path / "x.pcap", b"hello world"), GUESTS)


def test_json_round_trip(tmp_path: Path) -> None:
    pkts = [
        dns_to("10.0.0.2", CHAIN),
        pb.tcp("10.0.0.3", "203.0.113.5", 1, 443, client_hello("www.example.test")),
    ]
    index = extract_names(capture(tmp_path, pkts), GUESTS)
    data = json.loads(json.dumps(index.to_json()))
    back = NameIndex.from_json(data)
    assert back.to_json() == index.to_json()
    assert back.variants_for("203.0.113.5", "www.example.test") == ["regular", "tom-en"]
    assert back.variants_for("203.0.113.5", "www.example.test", "sni") == ["tom-en"]
    with pytest.raises(AnalysisError, match="malformed"):
        NameIndex.from_json({"addresses": {"not-an-ip": []}})
    with pytest.raises(AnalysisError, match="malformed"):
        NameIndex.from_json({"addresses": {"192.0.2.1": [{"name": "x", "source": "guess"}]}})


def test_names_from_flows(tmp_path: Path) -> None:
    def flow(client: str, server: tuple[str, int], host: str, sni: str | None) -> http.HTTPFlow:
        c = tflow.tclient_conn()
        c.peername = (client, 50000)
        c.sni = sni
        s = tflow.tserver_conn()
        s.address = server
        req = tutils.treq(
            host=server[0], port=server[1], headers=http.Headers(((b"Host", host.encode()),))
        )
        return tflow.tflow(client_conn=c, server_conn=s, req=req)

    path = write_flows(tmp_path / "flows.mitm", [
        flow("10.0.0.2", ("203.0.113.9", 443), "api.example.test:443", "api.example.test"),
        flow("10.0.0.3", ("203.0.113.10", 80), "203.0.113.10", None),  # IP literal Host
        flow("10.0.0.3", ("unresolved.example", 80), "x.example.test", None),  # no IP
    ])
    index = names_from_flows(NameIndex(), path, GUESTS)
    assert index["203.0.113.9"] == {("api.example.test", "http-host"), ("api.example.test", "sni")}
    assert index.variants_for("203.0.113.9", "api.example.test", "http-host") == ["regular"]
    assert "203.0.113.10" not in index
    assert len(index) == 1
