"""The gateway's resolver for an ``internet`` route: it forwards each query (UDP) to the route's
upstream resolver out of one interface only (SO_BINDTODEVICE: when the route is gone, queries
fail — they never leave another way) and writes every query and answer to a JSON-lines log of
the run: ``{"time", "client", "name", "type", "rcode", "answers": [...]}``.

    python -m testbed.route.forwarder --listen 10.77.0.1:5300 --upstream 192.0.2.53 \
        --device up0 --log lab/routes/up0-dns.jsonl --ready lab/routes/up0-dns.ready
"""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RCODE, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from testbed.run.files import append_line

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
UPSTREAM_SECONDS = 3.0


def forward(data: bytes, upstream: str, device: str) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, device.encode())
        s.settimeout(UPSTREAM_SECONDS)
        try:
            s.sendto(data, (upstream, 53))
            reply, _ = s.recvfrom(65535)
            return reply
        except OSError:
            return None


class Forwarder(BaseResolver):  # type: ignore[misc]
    """Served by dnslib's threaded server, as the lab's own resolver (`lab.services.dns`)."""

    def __init__(self, upstream: str, device: str, log: Path) -> None:
        self.upstream, self.device, self.log = upstream, device, log

    def resolve(self, request: Any, handler: Any) -> Any:
        q = request.q
        record: dict[str, Any] = {"time": time.time(), "client": handler.client_address[0],
                                  "name": str(q.qname).rstrip("."),
                                  "type": QTYPE.get(q.qtype, str(q.qtype))}
        data = forward(request.pack(), self.upstream, self.device)
        reply = None
        if data is None:
            record["rcode"] = "no answer (upstream unreachable through the route)"
        else:
            try:
                reply = DNSRecord.parse(data)
                record["rcode"] = RCODE.get(reply.header.rcode, str(reply.header.rcode))
                record["answers"] = [str(rr.rdata) for rr in reply.rr]
            except Exception:  # dnslib raises several kinds on a damaged answer
                record["rcode"] = "unparsable answer"
        if reply is None:
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
        append_line(self.log, record)
        return reply


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="testbed-route-forwarder")
    p.add_argument("--listen", required=True, help="ADDRESS:PORT")
    p.add_argument("--upstream", required=True)
    p.add_argument("--device", required=True)
    p.add_argument("--log", required=True, type=Path)
    p.add_argument("--ready", required=True, type=Path)
    args = p.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    server = DNSServer(Forwarder(args.upstream, args.device, args.log), address=host,
                       port=int(port), logger=DNSLogger("-request,-reply,-truncated,-data,"
                                                        "-recv,-send"))
    args.ready.write_text("ready\n")
    server.server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
