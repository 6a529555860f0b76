from __future__ import annotations

import random
from pathlib import Path

import pytest
from mitmproxy import http, tcp
from mitmproxy.test import tflow, tutils

from testbed._errors import AnalysisError
from testbed.analysis.flows import (
    HttpRecord,
    StreamRecord,
    read_flows,
    read_http,
    read_streams,
)

from . import pcapbuild as pb
from .flowbuild import write_flows

GUEST = "10.0.0.2"
SERVER = ("203.0.113.9", 443)


def http_flow(
    body: bytes = b"hello",
    path: bytes = b"/api/send",
    host: str = "chat.example.test",
    client: str = GUEST,
    server: tuple[str, int] = SERVER,
    resp_body: bytes | None = b"ok",
    ws: bool = False,
) -> http.HTTPFlow:
    c = tflow.tclient_conn()
    c.peername = (client, 50123)
    c.sni = host
    s = tflow.tserver_conn()
    s.address = server
    req = tutils.treq(
        host=server[0],
        port=server[1],
        scheme=b"https",
        method=b"POST",
        path=path,
        headers=http.Headers(((b"Host", host.encode()), (b"X-Test", b"1"))),
        content=body,
        timestamp_start=1_700_000_100.0,
    )
    resp = tutils.tresp(content=resp_body) if resp_body is not None else False
    return tflow.tflow(client_conn=c, server_conn=s, req=req, resp=resp, ws=ws)


def tcp_flow(messages: list[tuple[bool, bytes]], client: str = GUEST) -> tcp.TCPFlow:
    c = tflow.tclient_conn()
    c.peername = (client, 40000)
    c.sni = None
    s = tflow.tserver_conn()
    s.address = ("198.51.100.20", 5222)
    return tflow.ttcpflow(
        client_conn=c,
        server_conn=s,
        messages=[tcp.TCPMessage(fc, m, 1_700_000_200.0 + i) for i, (fc, m) in enumerate(messages)],
    )


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return write_flows(
        tmp_path / "flows.mitm",
        [
            http_flow(),
            tcp_flow([(True, b"<msg>hi</msg>"), (False, b"<ack/>")]),
            tflow.tdnsflow(resp=True),  # skipped: neither HTTP nor TCP/UDP
            http_flow(body=b"second", ws=True),
            tflow.tudpflow(),
        ],
    )


def test_read_http_fields(sample: Path) -> None:
    recs = list(read_http(sample))
    assert len(recs) == 2
    r = recs[0]
    assert isinstance(r, HttpRecord)
    assert r.client == (GUEST, 50123)
    assert r.server == SERVER
    assert r.host == "chat.example.test"
    assert r.sni == "chat.example.test"
    assert r.method == "POST"
    assert r.url == "https://203.0.113.9/api/send"
    assert r.request_body == b"hello"
    assert ("X-Test", "1") in r.request_headers
    assert r.status == 200
    assert r.response_body == b"ok"
    assert r.timestamp_start == 1_700_000_100.0
    assert r.messages == ()
    ws = recs[1]
    assert [m.content for m in ws.messages] == [b"hello binary", b"hello text", b"it's me"]
    assert [m.from_client for m in ws.messages] == [True, True, False]


def test_read_streams_and_order(sample: Path) -> None:
    kinds = [type(r).__name__ for r in read_flows(sample)]
    assert kinds == ["HttpRecord", "StreamRecord", "HttpRecord", "StreamRecord"]
    streams = list(read_streams(sample))
    assert [s.proto for s in streams] == ["tcp", "udp"]
    t = streams[0]
    assert isinstance(t, StreamRecord)
    assert t.server == ("198.51.100.20", 5222)
    assert t.client == (GUEST, 40000)
    assert [(m.from_client, m.content) for m in t.messages] == [
        (True, b"<msg>hi</msg>"),
        (False, b"<ack/>"),
    ]


def test_flow_without_response(tmp_path: Path) -> None:
    path = write_flows(tmp_path / "f.mitm", [http_flow(resp_body=None)])
    (r,) = read_http(path)
    assert r.status is None and r.response_body == b"" and r.response_headers == ()


def test_gzip_body_is_decoded(tmp_path: Path) -> None:
    fl = http_flow()
    fl.request.headers["content-encoding"] = "gzip"
    fl.request.content = b"compressed canary"  # mitmproxy encodes it
    assert fl.request.raw_content != b"compressed canary"
    path = write_flows(tmp_path / "f.mitm", [fl])
    (r,) = read_http(path)
    assert r.request_body == b"compressed canary"


def test_empty_file_has_no_flows(tmp_path: Path) -> None:
    path = tmp_path / "flows.mitm"
    path.write_bytes(b"")
    assert list(read_flows(path)) == []


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match=r"cannot read flow file .*nope\.mitm"):
        list(read_flows(tmp_path / "nope.mitm"))


def _all_or_error(path: Path) -> tuple[int, AnalysisError | None]:
    n = 0
    try:
        for _ in read_flows(path):
            n += 1
    except AnalysisError as e:
        return n, e
    return n, None


def test_truncated_at_many_offsets(sample: Path, tmp_path: Path) -> None:
    data = sample.read_bytes()
    ends = []  # where the first records end (same sizes as in `sample`): clean cuts
    offset = 0
    for fl in [http_flow(), tcp_flow([(True, b"<msg>hi</msg>"), (False, b"<ack/>")])]:
        one = write_flows(tmp_path / "one.mitm", [fl]).read_bytes()
        offset += len(one)
        ends.append(offset)
    cut = tmp_path / "cut.mitm"
    sizes = sorted(
        {*range(1, 64), *range(64, len(data), 61), *(e + d for e in ends for d in (-1, 1))}
    )
    for size in sizes:
        cut.write_bytes(data[:size])
        n, err = _all_or_error(cut)
        assert err is not None, size
        assert "cut.mitm" in str(err)
        assert "truncated" in str(err)
        if size < ends[0]:
            assert n == 0
            assert "not a readable mitmproxy flow file" in str(err)
        else:
            assert n >= 1
    for size in (0, *ends[:2], len(data)):
        cut.write_bytes(data[:size])
        assert _all_or_error(cut)[1] is None


def test_truncated_with_on_warning_keeps_earlier_flows(sample: Path, tmp_path: Path) -> None:
    data = sample.read_bytes()
    cut = pb.write(tmp_path / "cut.mitm", data[: len(data) * 3 // 4])
    warnings: list[str] = []
    recs = list(read_flows(cut, on_warning=warnings.append))
    assert len(recs) >= 2
    assert len(warnings) == 1
    assert warnings[0].startswith("cut.mitm: truncated")
    assert "flow(s); stopped reading" in warnings[0]
    # ... but damage before the first flow is refused even with on_warning
    cut.write_bytes(data[:50])
    with pytest.raises(AnalysisError, match=r"cut\.mitm: not a readable mitmproxy flow file"):
        list(read_flows(cut, on_warning=warnings.append))


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(random.Random(1).randbytes(4000), id="random"),
        pytest.param(b"5:hello,", id="tnetstring-not-a-dict"),
        pytest.param(b"0:}", id="empty-dict"),
        pytest.param(b"14:4:spam,4:eggs,}", id="dict-without-flow-fields"),
        pytest.param(b"999999999999:x", id="absurd-length"),
        pytest.param(b"99999999:x", id="large-length"),
        pytest.param(b'{"log": 1}', id="json-not-har"),
        pytest.param(b"\xef\xbb\xbf{broken", id="bom-json"),
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", id="text"),
        pytest.param(
            pb.pcap_bytes([pb.Frame(1.0, pb.ether(pb.packet("10.0.0.2", "192.0.2.1", "udp")))]),
            id="pcap",
        ),
    ],
)
def test_not_a_flow_file(tmp_path: Path, content: bytes) -> None:
    path = pb.write(tmp_path / "capture.bin", content)
    with pytest.raises(AnalysisError, match=r"capture\.bin: not a readable mitmproxy flow file"):
        list(read_flows(path))


def test_damage_after_good_flows(sample: Path, tmp_path: Path) -> None:
    path = pb.write(tmp_path / "f.mitm", sample.read_bytes() + b"garbage")
    n, err = _all_or_error(path)
    assert n == 4
    assert err is not None and "f.mitm: damaged flow record at byte" in str(err)
    assert "after 5 flow(s)" in str(err)


def test_mutated_files_raise_only_analysis_error(sample: Path, tmp_path: Path) -> None:
    data = sample.read_bytes()
    rng = random.Random(7)
    path = tmp_path / "m.mitm"
    for _ in range(300):
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        path.write_bytes(bytes(b))
        _all_or_error(path)  # any other exception type fails the test
