"""The gateway's resolver for an ``internet`` route: it forwards each query (UDP) to the route's
upstream resolver out of one interface only (SO_BINDTODEVICE: when the route is gone, queries
fail — they never leave another way) and writes every query and answer to a JSON-lines log of
the run: ``{"time", "client", "name", "type", "rcode", "answers": [...]}``.

    python -m testbed.route.forwarder --listen 10.77.0.1:5300 --upstream 192.0.2.53 \
        --device up0 --log lab/routes/up0-dns.jsonl --ready lab/routes/up0-dns.ready
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RCODE, DNSRecord

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
UPSTREAM_SECONDS = 3.0


class Log:
    def __init__(self, path: Path) -> None:
        self.out = path.open("a", encoding="utf-8")
        self.lock = threading.Lock()

    def write(self, **record: Any) -> None:
        with self.lock:
            self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.out.flush()


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


def answer(server: socket.socket, data: bytes, client: tuple[str, int], upstream: str,
           device: str, log: Log) -> None:
    try:
        query = DNSRecord.parse(data)
    except Exception:  # not DNS: nothing to forward
        log.write(time=time.time(), client=client[0], error="not a DNS query")
        return
    q = query.q
    record: dict[str, Any] = {"time": time.time(), "client": client[0],
                              "name": str(q.qname).rstrip("."),
                              "type": QTYPE.get(q.qtype, str(q.qtype))}
    reply = forward(data, upstream, device)
    if reply is None:
        record["rcode"] = "no answer (upstream unreachable through the route)"
        failed = query.reply()
        failed.header.rcode = RCODE.SERVFAIL
        reply = failed.pack()
    else:
        try:
            parsed = DNSRecord.parse(reply)
            record["rcode"] = RCODE.get(parsed.header.rcode, str(parsed.header.rcode))
            record["answers"] = [str(rr.rdata) for rr in parsed.rr]
        except Exception:
            record["rcode"] = "unparsable answer"
    log.write(**record)
    server.sendto(reply, client)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="testbed-route-forwarder")
    p.add_argument("--listen", required=True, help="ADDRESS:PORT")
    p.add_argument("--upstream", required=True)
    p.add_argument("--device", required=True)
    p.add_argument("--log", required=True, type=Path)
    p.add_argument("--ready", required=True, type=Path)
    args = p.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((host, int(port)))
    log = Log(args.log)
    args.ready.write_text("ready\n")
    while True:
        data, client = server.recvfrom(65535)
        threading.Thread(target=answer, args=(server, data, client, args.upstream,
                                              args.device, log), daemon=True).start()


if __name__ == "__main__":
    raise SystemExit(main())
