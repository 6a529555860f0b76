"""Whether a TLS handshake the gateway passed through unopened succeeded, read from the TLS
record headers of both directions (the content stays encrypted; only record types and lengths
are read).

The client checks the server's certificate after the server's first flight. Then:

- TLS 1.2: a client that accepts it sends its key exchange and ChangeCipherSpec; one that
  refuses sends an alert (record type 21) instead.
- TLS 1.3 (the server's flight is encrypted: application-data records before the client sent
  one): a client that accepts sends Finished (an application-data record of at least 53
  bytes) and then its data; one that refuses sends one encrypted alert (19 bytes: 2 of alert,
  1 of inner type, 16 of tag) and closes.

:func:`judge` says ``ok``, ``failed`` or ``unknown`` (the connection ended before the client's
answer could be seen), with a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
TLS13_ALERT_MAX = 32  # an encrypted alert is 19 bytes (+ padding); a Finished at least 53
OK, FAILED, UNKNOWN = "ok", "failed", "unknown"


@dataclass
class RecordScan:
    """TLS records of one connection, in the order they were seen: (from_client, type, length).
    Feed each direction's bytes to :meth:`feed`; partial headers are kept until complete."""

    records: list[tuple[bool, int, int]] = field(default_factory=list)
    _buf: dict[bool, bytearray] = field(default_factory=lambda: {True: bytearray(),
                                                                 False: bytearray()})
    _skip: dict[bool, int] = field(default_factory=lambda: {True: 0, False: 0})
    garbled: bool = False  # a direction carried something that is not TLS records

    def feed(self, from_client: bool, data: bytes) -> None:
        if self.garbled:
            return
        skip = min(self._skip[from_client], len(data))
        self._skip[from_client] -= skip
        buf = self._buf[from_client]
        buf += data[skip:]
        while len(buf) >= 5:
            kind, major, length = buf[0], buf[1], int.from_bytes(buf[3:5], "big")
            if kind not in (CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA) or major != 3:
                self.garbled = True
                return
            self.records.append((from_client, kind, length))
            body = min(length, len(buf) - 5)
            del buf[:5 + body]
            self._skip[from_client] = length - body


def judge(scan: RecordScan) -> tuple[str, str]:
    """``(ok|failed|unknown, why)`` for the handshake in ``scan`` (see the module docstring)."""
    if scan.garbled:
        return UNKNOWN, "the connection carried something other than TLS records"
    recs = scan.records
    first_server = next((i for i, r in enumerate(recs) if not r[0]), None)
    if first_server is None:
        return FAILED, "the server never answered the ClientHello"
    if recs[first_server][1] == ALERT:
        return FAILED, "the server answered the ClientHello with an alert"
    after = recs[first_server:]
    client_data = [r for r in after if r[0] and r[1] == APPLICATION_DATA]
    first_client_data = next((i for i, r in enumerate(after) if r[0]
                              and r[1] == APPLICATION_DATA), len(after))
    tls13 = any(not r[0] and r[1] == APPLICATION_DATA for r in after[:first_client_data])
    if tls13:
        if not client_data:
            if any(r[0] and r[1] == ALERT for r in after):
                return FAILED, "the client answered the server's certificate with an alert"
            return UNKNOWN, "the connection ended before the client answered (TLS 1.3)"
        if client_data[0][2] < TLS13_ALERT_MAX:
            return FAILED, "the client answered the server's certificate with an alert (TLS 1.3)"
        return OK, "the client finished the handshake (TLS 1.3)"
    for from_client, kind, _ in after:
        if not from_client:
            continue
        if kind == ALERT:
            return FAILED, "the client answered the server's certificate with an alert"
        if kind == CHANGE_CIPHER_SPEC:
            return OK, "the client finished the handshake (TLS 1.2)"
    return UNKNOWN, "the connection ended before the client answered"
