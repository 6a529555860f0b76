"""One TLS outcome per client and host, decided by difference from the capture addon's log.

A client's TLS to a host (its SNI, else its address) is tried under interception first. When
that handshake fails, the gateway passes the client's next connection to the host through
unopened (the *retry*, once per client and host, like Mon(IoT)r's auto-exceptions); the two
results together decide. Whether the client accepted the gateway's certificate for *another*
host tells a pinned host from a store the client does not read.

====================  ==========================  ==================  ===============
under interception    retry without interception  our CA accepted     outcome
                                                  for another host
====================  ==========================  ==================  ===============
(passed through by a scenario rule)                                   ``passthrough``
client finished       (none)                      any                 ``intercepted``
client refused        client finished             yes                 ``pinned``
client refused        client finished             no                  ``untrusted``
refused or failed     failed                      any                 ``broken``
server side failed    client finished             any                 ``unclassified``
refused or failed     none, or ended unseen       any                 ``unclassified``
never tried           (passed through by an older run's exception)    ``unclassified``
====================  ==========================  ==================  ===============

``pinned`` is never decided without both differences: a client that refuses the gateway's CA
everywhere is ``untrusted``, however it treats this host. ``unclassified`` says a claim must not
rest on the connection (``testbed.verdicts.facts``). Older runs wrote no retry (their addon
recorded ``pinned`` at the first refusal): their refusals read as ``unclassified``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from testbed.run import TlsRecord
from testbed.run.events import TLS_OUTCOMES, UNCLASSIFIED

INTERCEPTED, PASSTHROUGH, UNTRUSTED, PINNED, BROKEN = TLS_OUTCOMES
OUTCOMES = (*TLS_OUTCOMES, UNCLASSIFIED)
OPENED = frozenset({INTERCEPTED})  # outcomes whose content the flow file holds
RULE, RETRY = "rule", "retry"  # why a connection was passed through


@dataclass
class _Conn:
    time: float
    server: str
    port: int | None
    sni: str
    passthrough: bool
    why: str | None
    failed: str | None = None  # the side that failed under interception
    error: str = ""
    handshake: str | None = None  # ok | failed | unknown, for a passed-through connection


@dataclass(frozen=True)
class TlsOutcome:
    """The outcome of ``client``'s TLS to ``host`` (SNI, else address) and why; ``times`` are
    when each of its connections started."""

    client: str
    host: str
    server: str
    port: int | None
    sni: str
    outcome: str
    reason: str
    times: tuple[float, ...] = field(default=())

    @property
    def opened(self) -> bool:
        return self.outcome in OPENED


def _connections(records: Iterable[TlsRecord]) -> dict[tuple[str, str], list[_Conn]]:
    pairs: dict[tuple[str, str], list[_Conn]] = {}
    by_id: dict[str, _Conn] = {}
    last: dict[tuple[str, str, int | None, str], _Conn] = {}
    for r in sorted(records, key=lambda r: r.time or 0.0):
        client, server, sni = r.client or "", r.server or "", r.sni or ""
        where = (client, server, r.port, sni)
        if r.event == "clienthello":
            c = _Conn(r.time or 0.0, server, r.port, sni, bool(r.passthrough), r.why)
            pairs.setdefault((client, sni or server), []).append(c)
            last[where] = c
            if r.conn:
                by_id[r.conn] = c
            continue
        conn = by_id.get(r.conn) if r.conn else last.get(where)
        if conn is None and r.event in ("tls_failed", "pinned"):  # its ClientHello unlogged
            conn = _Conn(r.time or 0.0, server, r.port, sni, False, None)
            pairs.setdefault((client, sni or server), []).append(conn)
            last[where] = conn
        if conn is None:
            continue
        if r.event in ("tls_failed", "pinned") and not conn.passthrough:
            if conn.failed != "client":  # a client refusal outweighs a server failure
                conn.failed = r.side or "client"
                conn.error = r.error or conn.error
        elif r.event == "passthrough_end" and conn.passthrough:
            conn.handshake = r.handshake
    return pairs


def _decide(conns: list[_Conn], accepts_elsewhere: bool) -> tuple[str, str]:
    if any(c.passthrough and c.why == RULE for c in conns):
        return PASSTHROUGH, "passed through unopened by a scenario rule"
    tried = [c for c in conns if not c.passthrough]
    failures = [c for c in tried if c.failed]
    if not tried:
        return UNCLASSIFIED, ("passed through unopened after another client's refusal (an "
                              "older run's exception); it was never tried under interception")
    if not failures:
        return INTERCEPTED, "the client accepted the gateway's certificate"
    first = failures[0]
    side = "the client refused the gateway's certificate" if first.failed == "client" else \
        "the server side failed under interception"
    detail = f"{side} ({first.error})" if first.error else side
    retries = [c for c in conns if c.passthrough and c.time >= first.time]
    ends = [c.handshake for c in retries]
    if "ok" in ends:
        if first.failed != "client":
            return UNCLASSIFIED, (f"{detail}, yet the client finished the handshake without "
                                  "interception")
        if accepts_elsewhere:
            return PINNED, (f"{detail}, finished the handshake without interception, and "
                            "accepted the gateway's certificate for other hosts")
        return UNTRUSTED, (f"{detail} and accepted it for no host, but finished the handshake "
                           "without interception: it does not read the store the gateway's CA "
                           "was installed in")
    if "failed" in ends:
        return BROKEN, f"{detail}, and the handshake failed without interception too"
    if retries and all(c.why is None for c in retries):
        return UNCLASSIFIED, (f"{detail}; an older run: it passed the host through afterwards "
                              "but recorded no handshake, so pinning, a store the client does "
                              "not read and a broken server cannot be told apart")
    if retries:
        return UNCLASSIFIED, f"{detail}; the retry without interception ended unseen"
    return UNCLASSIFIED, (f"{detail}; no retry without interception was recorded, so pinning, "
                          "a store the client does not read and a broken server cannot be told "
                          "apart")


def classify(records: Iterable[TlsRecord]) -> tuple[TlsOutcome, ...]:
    """One :class:`TlsOutcome` per client and host seen in ``records`` (a run's TLS log, in any
    order), by the table in the module's docstring; ``outcome`` lines are not read."""
    pairs = _connections(r for r in records if r.event != "outcome")
    accepted: dict[str, set[str]] = {}
    for (client, host), conns in pairs.items():
        if any(not c.passthrough and not c.failed for c in conns):
            accepted.setdefault(client, set()).add(host)
    out = []
    for (client, host), conns in sorted(pairs.items(), key=lambda kv: kv[1][0].time):
        outcome, reason = _decide(conns, bool(accepted.get(client, set()) - {host}))
        c = conns[0]
        out.append(TlsOutcome(client=client, host=host, server=c.server, port=c.port, sni=c.sni,
                              outcome=outcome, reason=reason,
                              times=tuple(x.time for x in conns)))
    return tuple(out)
