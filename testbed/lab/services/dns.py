"""The lab's resolver, on the gateway: answers A records for the data file's names, NXDOMAIN
for every other name (nothing is ever forwarded to a real resolver)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from testbed.lab.internet_map import load_internet


class LabResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, names: dict[str, str], log: Path) -> None:
        self.names = names
        self.log = log.open("a", encoding="utf-8")

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        address = self.names.get(qname)
        if address and request.q.qtype in (QTYPE.A, QTYPE.ANY):
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=60))
        elif not address:
            reply.header.rcode = RCODE.NXDOMAIN
        self.log.write(json.dumps({"time": time.time(), "client": handler.client_address[0],
                                   "name": qname, "type": QTYPE[request.q.qtype],
                                   "answer": address}) + "\n")
        self.log.flush()
        return reply


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lab-dns")
    p.add_argument("--map", required=True, type=Path)
    p.add_argument("--listen", required=True)
    p.add_argument("--log", required=True, type=Path)
    p.add_argument("--ready", required=True, type=Path)
    args = p.parse_args(argv)
    internet = load_internet(args.map)
    names = {n.lower(): s.address for s in internet.servers for n in s.names}
    server = DNSServer(LabResolver(names, args.log), address=args.listen, port=53,
                       logger=DNSLogger("-request,-reply,-truncated,-data,-recv,-send"))
    server.start_thread()
    args.ready.write_text("ready\n")
    try:
        while server.isAlive():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
