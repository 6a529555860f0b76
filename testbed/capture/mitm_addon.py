"""mitmproxy addon (``mitmdump -s``): what mitmproxy's own flow file does not keep, and the
retry that decides each connection's TLS outcome by difference (``testbed.capture.outcomes``).

Writes JSON lines to the file in option ``testbed_tls_log``; every line names its connection
(``conn``):

``clienthello``      a TLS ClientHello: client, server address, SNI, ``passthrough`` (left
                     unopened) and then ``why``: ``rule`` (the scenario's: client addresses
                     and host patterns in the JSON file of option ``testbed_rules``) or
                     ``retry`` (below)
``tls_established``  the client finished its handshake with the gateway (interception worked)
``tls_failed``       a handshake under interception failed on the client or the server side,
                     with the error. The client's later connections to that host are passed
                     through unopened (per client and host): the first is the retry that says
                     whether the handshake works without interception, and the app keeps
                     working
``passthrough_end``  a passed-through connection ended: ``handshake`` ``ok``, ``failed`` or
                     ``unknown`` (``testbed.capture.tlsstream``, from record headers only)
``outcome``          at shutdown, one per client and host: the ``outcome`` and its ``reason``
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from mitmproxy import ctx, tcp, tls
from mitmproxy.addons.next_layer import stack_match
from mitmproxy.proxy import layer, layers
from mitmproxy.proxy.layers import modes
from mitmproxy.proxy.layers.tls import parse_client_hello

from testbed.capture.outcomes import RETRY, RULE, classify
from testbed.capture.tlsstream import RecordScan, judge
from testbed.run import TlsRecord
from testbed.run.files import append_line


class TlsLog:
    def __init__(self) -> None:
        self.exceptions: set[tuple[str, str]] = set()  # (client, host) failed under interception
        self.scans: dict[str, RecordScan] = {}
        self.records: list[dict[str, Any]] = []
        self._rules: tuple[set[str], list[str]] = (set(), [])
        self._rules_mtime: int | None = None
        self._lock = threading.Lock()

    def load(self, loader: Any) -> None:
        loader.add_option("testbed_tls_log", str, "", "JSON-lines file for SNI and TLS outcomes")
        loader.add_option("testbed_rules", str, "",
                          "JSON file: client addresses and host patterns never intercepted")

    def _write(self, **record: Any) -> None:
        record["time"] = time.time()
        with self._lock:
            self.records.append(record)
            path = ctx.options.testbed_tls_log
            if path:  # whole lines only: a full disk leaves no half line to misread
                append_line(Path(path), record)

    @staticmethod
    def _where(context: Any) -> dict[str, Any]:
        client = context.client.peername[0] if context.client.peername else ""
        address = context.server.address or ("", 0)
        return {"conn": context.client.id, "client": client, "server": str(address[0]),
                "port": int(address[1])}

    def _rule(self, client: str, host: str) -> bool:
        """Whether the scenario's rules (re-read when the file changes) leave it unopened."""
        path = ctx.options.testbed_rules
        try:
            mtime = os.stat(path).st_mtime_ns if path else None
            if mtime != self._rules_mtime:
                data = json.loads(open(path, encoding="utf-8").read()) if path else {}
                self._rules = ({str(c) for c in data.get("clients") or ()},
                               [str(h).lower() for h in data.get("hosts") or ()])
                self._rules_mtime = mtime
        except (OSError, ValueError, AttributeError):
            pass  # keep the rules last read: a file being replaced is read next time
        clients, hosts = self._rules
        return client in clients or any(fnmatch.fnmatch(host.lower(), p) for p in hosts)

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        """Pass a connection through as raw TCP (so its record headers can be read) when a
        rule says so or when it is the client's retry of a host that failed under
        interception."""
        context = nextlayer.context
        if nextlayer.layer is not None or context.client.transport_protocol != "tcp" \
                or not stack_match(context, (modes.TransparentProxy,)):
            return
        try:
            hello = parse_client_hello(nextlayer.data_client())
        except ValueError:
            return
        if hello is None:
            return  # not TLS, or not all of the ClientHello yet: asked again with more
        where = self._where(context)
        sni = hello.sni or ""
        host = sni or where["server"]
        why = RULE if self._rule(where["client"], host) else RETRY if (where["client"], host) in \
            self.exceptions else None
        if why is None:
            return
        self.scans[where["conn"]] = RecordScan()
        nextlayer.layer = layers.TCPLayer(context)
        self._write(event="clienthello", **where, sni=sni, passthrough=True, why=why)

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        scan = self.scans.get(flow.client_conn.id)
        if scan is not None and flow.messages:
            message = flow.messages[-1]
            scan.feed(message.from_client, message.content)

    def tcp_end(self, flow: tcp.TCPFlow) -> None:
        scan = self.scans.pop(flow.client_conn.id, None)
        if scan is not None:
            handshake, reason = judge(scan)
            self._write(event="passthrough_end", conn=flow.client_conn.id,
                        handshake=handshake, reason=reason)

    tcp_error = tcp_end

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        self._write(event="clienthello", **self._where(data.context),
                    sni=data.client_hello.sni or "", passthrough=False)

    def tls_established_client(self, data: tls.TlsData) -> None:
        self._write(event="tls_established", side="client", **self._where(data.context),
                    sni=data.conn.sni or "")

    def _failed(self, side: str, data: tls.TlsData, error: str = "") -> None:
        where = self._where(data.context)
        sni = data.conn.sni or data.context.client.sni or ""
        self._write(event="tls_failed", side=side, **where, sni=sni,
                    error=error or str(data.conn.error or ""))
        self.exceptions.add((where["client"], sni or where["server"]))

    def tls_established_server(self, data: tls.TlsData) -> None:
        """Without upstream verification (``ssl_insecure``) mitmproxy would hide a server
        certificate outside its validity period behind its own: count it as a server-side
        failure, so that the retry without interception shows what the client makes of it."""
        certs = data.conn.certificate_list
        if not certs or not ctx.options.ssl_insecure:
            return
        now = datetime.datetime.now(datetime.UTC)
        if certs[0].notafter < now:
            self._failed("server", data, "the server's certificate expired on "
                         f"{certs[0].notafter:%Y-%m-%d %H:%M} UTC")
        elif certs[0].notbefore > now:
            self._failed("server", data, "the server's certificate is valid only from "
                         f"{certs[0].notbefore:%Y-%m-%d %H:%M} UTC")

    def tls_failed_client(self, data: tls.TlsData) -> None:
        self._failed("client", data)

    def tls_failed_server(self, data: tls.TlsData) -> None:
        self._failed("server", data)

    def done(self) -> None:
        """At shutdown: the outcome of every client and host, in the log's own words."""
        with self._lock:
            records = [TlsRecord.from_json(r) for r in self.records]
        for o in classify(records):
            self._write(event="outcome", client=o.client, server=o.server, port=o.port,
                        sni=o.sni, outcome=o.outcome, reason=o.reason)


addons = [TlsLog()]
