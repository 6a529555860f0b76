"""The simulated internet's servers: one process in the internet namespace answering on every
address of the data file.

    TCP 80   HTTP          TCP 443  HTTPS (self-signed; the gateway's mitmproxy is the client)
    UDP 3478 echo          the chat relay under /chat/ (login, send, inbox) on every address

Download sites (``sites``) answer by where the client appears to be.

Every request is appended to a JSON-lines log (what the servers really received), so tests
can compare it with what the gateway captured.
"""

from __future__ import annotations

import argparse
import datetime
import json
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from testbed.lab.internet_map import InternetMap, load_internet
from testbed.lab.services.sites import site_answer

IP_PKTINFO: int = getattr(socket, "IP_PKTINFO", 8)  # Linux; missing from typeshed

#: the path every lab server answers with the caller's address (a route's echo URL)
ECHO_PATH = "/ip"


class Log:
    def __init__(self, path: Path) -> None:
        self._f = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, **record: Any) -> None:
        record["time"] = time.time()
        with self._lock:
            self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._f.flush()


class Mailboxes:
    """The chat relay's state: messages and call signals waiting per user, and who is online."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._boxes: dict[str, list[dict[str, str]]] = {}
        self._seen: dict[str, float] = {}

    def put(self, to: str, message: dict[str, str]) -> None:
        with self._lock:
            self._boxes.setdefault(to, []).append(message)

    def take(self, user: str) -> list[dict[str, str]]:
        with self._lock:
            self._seen[user] = time.time()
            return self._boxes.pop(user, [])

    def seen(self, user: str) -> None:
        with self._lock:
            self._seen[user] = time.time()

    def online(self) -> list[str]:
        with self._lock:
            return sorted(u for u, t in self._seen.items() if time.time() - t < 30)


def keyword_list(internet: InternetMap | None) -> bytes:
    if internet is None:
        return b""
    lines = [f"{kind}:{word}" for kind in ("monitor", "censor")
             for word in internet.keywords.get(kind, [])]
    return ("\n".join(lines) + "\n").encode()


def make_handler(log: Log, boxes: Mailboxes,
                 internet: InternetMap | None = None) -> type[BaseHTTPRequestHandler]:
    keywords = keyword_list(internet)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "lab"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, body: bytes, ctype: str = "text/plain", status: int = 200,
                    location: str | None = None) -> None:
            self.send_response(status)
            if location is not None:
                self.send_header("Location", location)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            server, port = self.connection.getsockname()[:2]
            url = urllib.parse.urlsplit(self.path)
            host = url.netloc or self.headers.get("Host", "")
            site = site_answer(internet, host, url.path, self.client_address[0],
                               "https" if port == 443 else "http")
            log.write(server=server, port=port, method=method, path=self.path, host=host,
                      body=raw.decode("utf-8", "replace"), client=self.client_address[0],
                      **({"status": site.status} if site is not None else {}))
            if site is not None:
                self._answer(site.body, "application/octet-stream", site.status, site.location)
            elif url.path.startswith("/chat/"):
                self._chat(url, raw)
            elif url.path == "/keywords.txt":
                self._answer(keywords, "text/plain; charset=utf-8")
            elif url.path == ECHO_PATH:  # the caller's address as this server sees it
                self._answer(f"{self.client_address[0]}\n".encode(), "text/plain")
            else:
                self._answer(f"lab server {server}: {url.path}\n".encode())

        def _chat(self, url: urllib.parse.SplitResult, raw: bytes) -> None:
            op = url.path.removeprefix("/chat/")
            data = json.loads(raw or b"{}") if raw else {}
            if op == "send":
                item = {k: str(data[k]) for k in ("from", "text", "signal") if k in data}
                boxes.put(str(data.get("to")), item)
                out: Any = {"ok": True}
            elif op == "inbox":
                user = urllib.parse.parse_qs(url.query).get("user", [""])[0]
                out = boxes.take(user)
            elif op in ("login", "presence"):
                boxes.seen(str(data.get("user")))
                out = {"ok": True}
            elif op == "roster":
                out = boxes.online()
            else:
                out = {"ok": True}
            self._answer(json.dumps(out).encode(), "application/json")

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

    return Handler


def self_signed(workdir: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("*.lab.example")]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = workdir / "internet-cert.pem", workdir / "internet-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def udp_echo(port: int, log: Log) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        s.bind(("0.0.0.0", port))
        while True:
            data, anc, _flags, peer = s.recvmsg(4096, socket.CMSG_SPACE(12))
            server = "?"
            for level, typ, cdata in anc:
                if level == socket.IPPROTO_IP and typ == IP_PKTINFO:
                    server = socket.inet_ntoa(cdata[8:12])
            log.write(server=server, port=port, method="UDP", path="", host="",
                      body=data.decode("utf-8", "replace"))
            # Answer from the address that was dialled, like a real host.
            info = struct.pack("@i4s4s", 0, socket.inet_aton(server) if server != "?"
                               else bytes(4), bytes(4))
            s.sendmsg([data], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0, peer)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lab-internet")
    p.add_argument("--log", required=True, type=Path)
    p.add_argument("--workdir", required=True, type=Path)
    p.add_argument("--ready", required=True, type=Path)
    p.add_argument("--map", type=Path, help="the internet data file (keyword list, TLS key)")
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    internet = load_internet(args.map) if args.map else None
    log, boxes = Log(args.log), Mailboxes()
    handler = make_handler(log, boxes, internet)
    ThreadingHTTPServer.allow_reuse_address = True
    plain = ThreadingHTTPServer(("0.0.0.0", 80), handler)
    tls = ThreadingHTTPServer(("0.0.0.0", 443), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if internet is not None and internet.tls_cert is not None and internet.tls_key is not None:
        ctx.load_cert_chain(internet.tls_cert, internet.tls_key)  # what builds may pin
    else:
        ctx.load_cert_chain(*self_signed(args.workdir))
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    for srv in (plain, tls):
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    threading.Thread(target=udp_echo, args=(3478, log), daemon=True).start()
    args.ready.write_text("ready\n")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
