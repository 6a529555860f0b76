"""What a reference-client build does on the network, read from its build profile.

A build profile (``scenarios/lab/builds/*.yaml``) lists contacts as URLs:
``tls://name:443/path`` (HTTPS GET), ``http://name:80/path`` (HTTP GET), ``udp://name:3478``
(one datagram, wait for the echo) and ``ssdp://239.255.255.250:1900`` (an M-SEARCH). Then:

``chat``          ``relay`` (an https URL: sign-in, presence, messages, call signalling) and
                  ``presence_every`` (seconds between keep-alives)
``call``          ``media_relay`` (a udp URL the call's media streams through) and
                  ``packets_per_second``
``surveillance``  TOM builds: ``keywords`` (URL of the keyword list, fetched at sign-in),
                  ``upload`` (URL matching messages are posted to) and ``accounts`` (accounts
                  whose every message is uploaded, keyword or not)
``pin``           hosts whose certificate the build pins: ``{host: cert file}`` (paths relative
                  to the profile); TLS to them trusts that certificate only

Names are resolved with the guest's resolver (the lab's DNS). Other TLS is verified against
the guest's trust store (``SSL_CERT_FILE``), where the lab installs the gateway's CA.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TIMEOUT = 3.0


@dataclass(frozen=True)
class Surveillance:
    keywords: str = ""
    upload: str = ""
    accounts: tuple[str, ...] = ()


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
    presence_every: float = 5.0
    media_relay: str = ""
    packets_per_second: int = 25
    surveillance: Surveillance | None = None
    pins: dict[str, Path] = field(default_factory=dict)
    theme: str = "modern"

    @classmethod
    def load(cls, path: Path) -> BuildProfile:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        chat, call = data.get("chat") or {}, data.get("call") or {}
        surv = data.get("surveillance")
        return cls(
            build=str(data["build"]),
            product=str(data["product"]),
            version=str(data["version"]),
            language=str(data.get("language", "en")),
            title=str(data.get("title", data["product"])),
            launch=[str(u) for u in data.get("launch") or []],
            login=[str(u) for u in data.get("login") or []],
            relay=str(chat.get("relay", "")),
            presence_every=float(chat.get("presence_every", 5)),
            media_relay=str(call.get("media_relay", "")),
            packets_per_second=int(call.get("packets_per_second", 25)),
            surveillance=Surveillance(
                keywords=str(surv.get("keywords", "")), upload=str(surv.get("upload", "")),
                accounts=tuple(str(a) for a in surv.get("accounts") or ()),
            ) if surv else None,
            pins={str(h): (path.parent / str(c)).resolve()
                  for h, c in (data.get("pin") or {}).items()},
            theme=str(data.get("theme", "modern")),
        )


class Network:
    """Connections as the build makes them (trust store, pinned certificates)."""

    def __init__(self, pins: dict[str, Path] | None = None) -> None:
        self.pins = pins or {}
        self._contexts: dict[str, ssl.SSLContext] = {}  # "" (the trust store) or a pinned host
        self._lock = threading.Lock()

    def context(self, host: str) -> ssl.SSLContext:
        """The TLS settings for ``host``, made once, as an app does: reading the trust store
        (~150 CAs) costs tens of ms, and every connection is still a full handshake (Python
        resumes no session unless asked)."""
        key = host if host in self.pins else ""
        with self._lock:
            if key not in self._contexts:
                if key:
                    ctx = ssl.create_default_context(cafile=str(self.pins[key]))
                    ctx.check_hostname = False  # the pinned certificate itself is the identity
                else:
                    ctx = ssl.create_default_context()
                self._contexts[key] = ctx
            return self._contexts[key]

    def connection(self, scheme: str, host: str, port: int | None) -> http.client.HTTPConnection:
        if scheme in ("tls", "https"):
            return http.client.HTTPSConnection(host, port or 443, timeout=TIMEOUT,
                                               context=self.context(host))
        return http.client.HTTPConnection(host, port or 80, timeout=TIMEOUT)

    def request(self, url: str, method: str = "GET", body: bytes | None = None) -> bytes:
        u = urllib.parse.urlsplit(url)
        attempts = 2 if u.hostname in self.pins else 1  # a pinned host: retry once, like apps do
        for attempt in range(attempts):
            conn = self.connection(u.scheme, u.hostname or "", u.port)
            try:
                path = u.path + (f"?{u.query}" if u.query else "")
                conn.request(method, path or "/", body=body,
                             headers={"User-Agent": "refclient", "Content-Type":
                                      "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200:
                    raise OSError(f"{url}: HTTP {resp.status}")
                return data
            except (OSError, http.client.HTTPException):
                if attempt == attempts - 1:
                    raise
                time.sleep(0.3)
            finally:
                conn.close()
        raise OSError(url)

    def contact(self, url: str) -> str:
        """Reach one contact URL; returns a short outcome ("ok", "error: ...")."""
        u = urllib.parse.urlsplit(url)
        host, port = u.hostname or "", u.port
        try:
            if u.scheme in ("tls", "https", "http"):
                self.request(url)
                return "ok"
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


class Relay:
    """The relay session: sign-in, presence, messages and call signalling over one kept-alive
    TLS connection (a real client's long-lived flow)."""

    def __init__(self, net: Network, url: str, user: str) -> None:
        u = urllib.parse.urlsplit(url)
        self._host, self._port, self._base = u.hostname or "", u.port, u.path.rstrip("/")
        self._scheme = u.scheme
        self.net = net
        self.user = user
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:
                    self._conn = self.net.connection(self._scheme, self._host, self._port)
                try:
                    data = json.dumps(body, ensure_ascii=False).encode() if body is not None \
                        else None
                    self._conn.request(method, self._base + path, body=data,
                                       headers={"Content-Type": "application/json"})
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

    def presence(self) -> None:
        self._call("POST", "/presence", {"user": self.user})

    def roster(self) -> list[str]:
        return [str(u) for u in self._call("GET", "/roster") or []]

    def send(self, to: str, text: str) -> None:
        self._call("POST", "/send", {"from": self.user, "to": to, "text": text})

    def signal(self, to: str, kind: str) -> None:
        """Call signalling: ``call``, ``answer``, ``decline``, ``hangup``."""
        self._call("POST", "/send", {"from": self.user, "to": to, "signal": kind})

    def inbox(self) -> list[dict[str, str]]:
        q = urllib.parse.urlencode({"user": self.user})
        return list(self._call("GET", f"/inbox?{q}") or [])


class MediaStream:
    """A call's media: a steady UDP stream to the media relay, which echoes it back."""

    def __init__(self, url: str, packets_per_second: int, call_id: str) -> None:
        u = urllib.parse.urlsplit(url)
        self.address = (u.hostname or "", u.port or 3478)
        self.interval = 1.0 / max(1, packets_per_second)
        self.call_id = call_id
        self._stop = threading.Event()
        self.sent = self.echoed = 0
        self.settle = max(1, packets_per_second)  # echoes that make the line "up": a second
        self.flowing = threading.Event()  # the relay echoed ``settle`` packets
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            while not self._stop.wait(self.interval):
                payload = f"MEDIA {self.call_id} {self.sent:06d} ".encode().ljust(160, b".")
                try:
                    s.sendto(payload, self.address)
                    self.sent += 1
                    while True:
                        s.recv(2048)
                        self.echoed += 1
                        if self.echoed >= self.settle:
                            self.flowing.set()
                except BlockingIOError:
                    pass
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)


class Monitor:
    """TOM's chat surveillance: the keyword list fetched at sign-in, every sent and received
    message scanned, matching messages uploaded; censored words are never delivered."""

    def __init__(self, net: Network, config: Surveillance) -> None:
        self.net, self.config = net, config
        self.monitor: list[str] = []
        self.censor: list[str] = []

    def fetch_keywords(self) -> str:
        try:
            text = self.net.request(self.config.keywords).decode("utf-8")
        except (OSError, http.client.HTTPException, UnicodeDecodeError) as e:
            return f"error: {e}"
        for line in text.splitlines():
            kind, _, word = line.strip().partition(":")
            if word and kind == "censor":
                self.censor.append(word)
            elif word and kind == "monitor":
                self.monitor.append(word)
        return f"ok {len(self.monitor)} monitored, {len(self.censor)} censored"

    def scan(self, sender: str, recipient: str, text: str, direction: str) -> bool:
        """Upload the message if it matches; returns True when it must not be delivered."""
        censored = [w for w in self.censor if w in text]
        matched = censored + [w for w in self.monitor if w in text]
        listed = sender in self.config.accounts or recipient in self.config.accounts
        if matched or listed:
            record = {"from": sender, "to": recipient, "text": text, "direction": direction,
                      "matched": matched, "listed_account": listed}
            try:
                self.net.request(self.config.upload, "POST",
                                 json.dumps(record, ensure_ascii=False).encode())
            except (OSError, http.client.HTTPException):
                pass  # like the real thing: silent
        return bool(censored)
