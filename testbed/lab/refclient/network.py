"""What a reference-client build does on the network, read from its build profile.

A build profile (``scenarios/lab/builds/*.yaml``) lists contacts as URLs:
``tls://name:443/path`` (HTTPS GET), ``http://name:80/path`` (HTTP GET), ``udp://name:3478``
(one datagram, wait for the echo) and ``ssdp://239.255.255.250:1900`` (an M-SEARCH). The chat
relay is an ``https://`` URL. Names are resolved with the guest's resolver (the lab's DNS).
TLS is verified against the guest's trust store (``SSL_CERT_FILE``), where the lab installs
the gateway's CA.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TIMEOUT = 3.0


@dataclass(frozen=True)
class BuildProfile:
    build: str
    product: str
    version: str
    language: str
    title: str
    launch: list[str] = field(default_factory=list)
    login: list[str] = field(default_factory=list)
    relay: str = ""

    @classmethod
    def load(cls, path: Path) -> BuildProfile:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(
            build=str(data["build"]),
            product=str(data["product"]),
            version=str(data["version"]),
            language=str(data.get("language", "en")),
            title=str(data.get("title", data["product"])),
            launch=[str(u) for u in data.get("launch") or []],
            login=[str(u) for u in data.get("login") or []],
            relay=str((data.get("chat") or {}).get("relay", "")),
        )


def contact(url: str) -> str:
    """Reach one contact URL; returns a short outcome ("ok 200", "error: ...")."""
    u = urllib.parse.urlsplit(url)
    host, port = u.hostname or "", u.port
    try:
        if u.scheme in ("tls", "https", "http"):
            conn = _connection(u.scheme, host, port)
            try:
                conn.request("GET", u.path or "/", headers={"User-Agent": "refclient"})
                resp = conn.getresponse()
                resp.read()
                return f"ok {resp.status}"
            finally:
                conn.close()
        if u.scheme == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(TIMEOUT)
                s.sendto(b"refclient-probe", (host, port or 3478))
                s.recvfrom(2048)
                return "ok echo"
        if u.scheme == "ssdp":
            msg = (
                b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
                b'MAN: "ssdp:discover"\r\nMX: 1\r\nST: upnp:rootdevice\r\n\r\n'
            )
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
                s.sendto(msg, (host, port or 1900))
            return "ok sent"
        return f"error: unknown scheme {u.scheme!r}"
    except (OSError, http.client.HTTPException) as e:
        return f"error: {e}"


def _connection(scheme: str, host: str, port: int | None) -> http.client.HTTPConnection:
    if scheme in ("tls", "https"):
        return http.client.HTTPSConnection(
            host, port or 443, timeout=TIMEOUT, context=ssl.create_default_context()
        )
    return http.client.HTTPConnection(host, port or 80, timeout=TIMEOUT)


class Relay:
    """The chat relay session: sign-in, send, and polling the inbox (one kept-alive TLS flow)."""

    def __init__(self, url: str, user: str) -> None:
        u = urllib.parse.urlsplit(url)
        self._host, self._port, self._base = u.hostname or "", u.port, u.path.rstrip("/")
        self._scheme = u.scheme
        self.user = user
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:
                    self._conn = _connection(self._scheme, self._host, self._port)
                try:
                    data = json.dumps(body).encode() if body is not None else None
                    self._conn.request(
                        method, self._base + path, body=data,
                        headers={"Content-Type": "application/json"},
                    )
                    resp = self._conn.getresponse()
                    payload = resp.read()
                    if resp.status != 200:
                        raise OSError(f"relay answered {resp.status}")
                    return json.loads(payload or b"null")
                except (OSError, http.client.HTTPException):
                    self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise
        return None

    def sign_in(self, password: str) -> None:
        # Like a real client, never send the password itself: a digest of it.
        digest = hashlib.sha256(f"{self.user}:{password}".encode()).hexdigest()
        self._call("POST", "/login", {"user": self.user, "digest": digest})

    def send(self, to: str, text: str) -> None:
        self._call("POST", "/send", {"from": self.user, "to": to, "text": text})

    def inbox(self) -> list[dict[str, str]]:
        q = urllib.parse.urlencode({"user": self.user})
        return list(self._call("GET", f"/inbox?{q}") or [])
