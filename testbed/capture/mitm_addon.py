"""mitmproxy addon (``mitmdump -s``): what mitmproxy's own flow file does not keep.

Writes JSON lines to the file in option ``testbed_tls_log``:

``clienthello``  every TLS ClientHello: client, server address, SNI, and whether it was passed
                 through unopened
``tls_failed``   a TLS handshake that failed on the client or the server side, with the error
``pinned``       a server whose client refused our certificate (certificate pinning): every later
                 connection to it is passed through unopened, so the app keeps working and the
                 capture shows the flow — recorded as pinned, never as absence of content
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from mitmproxy import ctx, tls


class TlsLog:
    def __init__(self) -> None:
        self.pinned: set[str] = set()
        self._lock = threading.Lock()

    def load(self, loader: Any) -> None:
        loader.add_option("testbed_tls_log", str, "", "JSON-lines file for SNI and TLS failures")

    def _write(self, **record: Any) -> None:
        path = ctx.options.testbed_tls_log
        if not path:
            return
        record["time"] = time.time()
        with self._lock, open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    @staticmethod
    def _where(context: Any) -> tuple[str, str, int]:
        client = context.client.peername[0] if context.client.peername else ""
        address = context.server.address or ("", 0)
        return client, str(address[0]), int(address[1])

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        client, server, port = self._where(data.context)
        sni = data.client_hello.sni or ""
        passthrough = (sni or server) in self.pinned
        if passthrough:
            data.ignore_connection = True
        self._write(event="clienthello", client=client, server=server, port=port, sni=sni,
                    passthrough=passthrough)

    def tls_failed_client(self, data: tls.TlsData) -> None:
        client, server, port = self._where(data.context)
        sni = data.conn.sni or ""
        self._write(event="tls_failed", side="client", client=client, server=server, port=port,
                    sni=sni, error=str(data.conn.error or ""))
        key = sni or server
        if key not in self.pinned:
            self.pinned.add(key)
            self._write(event="pinned", client=client, server=server, port=port, sni=sni)

    def tls_failed_server(self, data: tls.TlsData) -> None:
        client, server, port = self._where(data.context)
        self._write(event="tls_failed", side="server", client=client, server=server, port=port,
                    sni=data.conn.sni or "", error=str(data.conn.error or ""))


addons = [TlsLog()]
