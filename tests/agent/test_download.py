"""The agent's ``download`` verb on loopback: the simulated internet's real request handler
(on the seed's map) reached through a proxy opener, so the site names need no resolver; its
redirects, digests and failures, and the step request's checks."""

from __future__ import annotations

import hashlib
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from testbed.agent.download import DownloadFailed, download, summary
from testbed.agent.requests import BadRequest, check_step
from testbed.lab.internet_map import load_internet
from testbed.lab.services.internet import Log, Mailboxes, make_handler
from testbed.lab.services.sites import download_body, download_sha256, site_answer

ROOT = Path(__file__).resolve().parents[2]
INTERNET = load_internet(ROOT / "scenarios" / "lab" / "internet-2013.yaml")
URL = "http://www.skype.lab.example/SkypeSetup.exe"


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="module")
def internet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = Log(tmp_path_factory.mktemp("internet") / "internet.jsonl")
    yield from serve(make_handler(log, Mailboxes(), INTERNET))


def via(proxy: str) -> urllib.request.OpenerDirector:
    from testbed.agent.download import _opener

    return _opener(urllib.request.ProxyHandler({"http": proxy}))


@pytest.mark.parametrize(("url", "host"), [
    (URL, "www.skype.lab.example"),
    ("http://skype.tom.lab.example/SkypeSetup.exe", "skype.tom.lab.example"),
    ("http://www.skype.lab.example/other/path?x=1", "www.skype.lab.example"),
])
def test_a_download_site_serves_its_build(internet: str, url: str, host: str) -> None:
    got = download(url, opener=via(internet))
    path = url.split(host, 1)[1].split("?")[0]
    assert got["final_host"] == host and got["status"] == 200
    assert got["sha256"] == download_sha256(host, path)
    assert got["size"] == len(download_body(host, path))
    assert got["chain"] == [{"url": url, "status": 200, "location": None}]
    assert summary(got).endswith(f"(not redirected), sha256 {got['sha256']}")


class Hops(BaseHTTPRequestHandler):
    """/r/N redirects to /r/N-1 … /r/0, which serves b"end"; /loop redirects to itself;
    /gone is a 404; /ftp redirects to an ftp URL."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        status, headers, body = 200, {}, b"end"
        if self.path.startswith("/r/") and self.path != "/r/0":
            status, headers = 302, {"Location": f"/r/{int(self.path[3:]) - 1}"}
        elif self.path == "/loop":
            status, headers = 307, {"Location": "/loop"}
        elif self.path == "/gone":
            status, body = 404, b"no"
        elif self.path == "/ftp":
            status, headers = 301, {"Location": "ftp://example.invalid/x"}
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def hops() -> Iterator[str]:
    yield from serve(Hops)


@pytest.mark.parametrize("n", [0, 1, 3, 10])
def test_every_redirect_is_recorded(hops: str, n: int) -> None:
    got = download(f"{hops}/r/{n}")
    assert [h["status"] for h in got["chain"]] == [302] * n + [200]
    assert [h["url"] for h in got["chain"]] == [f"{hops}/r/{k}" for k in range(n, -1, -1)]
    assert got["sha256"] == hashlib.sha256(b"end").hexdigest() and got["final_host"] == "127.0.0.1"


@pytest.mark.parametrize(("path", "message"), [
    ("/r/11", "more than 10 redirects"),
    ("/loop", "more than 10 redirects"),
    ("/gone", "answered HTTP 404"),
    ("/ftp", "ftp://example.invalid/x: only http and https URLs can be downloaded"),
])
def test_failures_say_which_url_and_why(hops: str, path: str, message: str) -> None:
    with pytest.raises(DownloadFailed, match=message) as e:
        download(f"{hops}{path}")
    assert e.value.record["url"] == f"{hops}{path}"
    assert "sha256" not in e.value.record


def test_a_refused_connection_is_a_failure(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(DownloadFailed, match="could not be fetched"):
        download(f"http://127.0.0.1:{port}/x", timeout=2)


@pytest.mark.parametrize(("client", "host", "expected"), [
    ("203.0.113.33", "www.skype.lab.example", (302, "http://skype.tom.lab.example/a")),
    ("203.0.113.33", "WWW.SKYPE.LAB.EXAMPLE:80", (302, "http://skype.tom.lab.example/a")),
    ("198.51.100.36", "www.skype.lab.example", (200, None)),
    ("10.77.0.1", "www.skype.lab.example", (200, None)),
    ("203.0.113.33", "skype.tom.lab.example", (200, None)),
    ("203.0.113.33", "srv-110-81-238-33.cn.lab.example", None),  # not a download site
    ("203.0.113.33", "unknown.lab.example", None),
])
def test_sites_answer_by_the_apparent_country_of_the_client(
        client: str, host: str, expected: tuple[int, str | None] | None) -> None:
    got = site_answer(INTERNET, host, "/a", client)
    assert (got if got is None else (got.status, got.location)) == expected
    assert site_answer(None, host, "/a", client) is None


@pytest.mark.parametrize(("step", "error"), [
    ({"download": URL}, None),
    ({"download": URL, "timeout": 30}, None),
    ({"download": ["x"]}, "must be text"),
    ({"download": URL, "confidence": 0.5}, "unknown option(s) 'confidence'"),
    ({"download": URL, "timeout": -1}, "timeout must be between"),
])
def test_the_agent_checks_download_steps(step: dict[str, Any], error: str | None) -> None:
    if error is None:
        assert check_step(1, step) == step
    else:
        with pytest.raises(BadRequest, match=error.replace("(", r"\(").replace(")", r"\)")):
            check_step(1, step)
