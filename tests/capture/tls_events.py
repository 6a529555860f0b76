"""Event sequences the capture addon writes (``testbed.capture.mitm_addon``), generated per
case of the decision table, in the current format (connection ids) or an older run's (none)."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count()

#: what happened under interception
INTERCEPTION = ("established", "client refused", "server failed", "none")
#: the retry without interception: not made, its handshake ok / failed / unknown, or a
#: passthrough the addon made for no recorded reason (an older run's global exception)
RETRY = ("none", "ok", "failed", "unknown", "older")


def connection(client: str, host: str, t: float, *, passthrough: bool = False,
               why: str | None = None, ids: bool = True) -> tuple[str | None, list[dict[str, Any]]]:
    conn = f"c{next(_ids)}" if ids else None
    hello: dict[str, Any] = {"event": "clienthello", "client": client, "server": "203.0.113.9",
                             "port": 443, "sni": host, "passthrough": passthrough, "time": t}
    if why:
        hello["why"] = why
    if conn:
        hello["conn"] = conn
    return conn, [hello]


def _tag(record: dict[str, Any], conn: str | None, client: str, host: str) -> dict[str, Any]:
    out = record | {"client": client, "server": "203.0.113.9", "port": 443, "sni": host}
    if conn:
        out["conn"] = conn
    return out


def pair(client: str, host: str, t: float, interception: str, retry: str,
         rule: bool = False, ids: bool = True) -> list[dict[str, Any]]:
    """The lines one client and host leave: a connection under interception ending as
    ``interception`` (or none), then the retry ending as ``retry``; or only a passthrough by a
    scenario rule."""
    if rule:
        conn, lines = connection(client, host, t, passthrough=True, why="rule", ids=ids)
        end = {"event": "passthrough_end", "conn": conn, "handshake": "ok", "time": t + 0.1}
        return [*lines, end] if conn else lines
    lines: list[dict[str, Any]] = []
    if interception != "none":
        conn, lines = connection(client, host, t, ids=ids)
        if interception == "established":
            lines.append(_tag({"event": "tls_established", "side": "client", "time": t + 0.01},
                              conn, client, host))
        elif interception == "client refused":
            lines.append(_tag({"event": "tls_failed", "side": "client", "error": "unknown ca",
                               "time": t + 0.01}, conn, client, host))
        else:
            lines.append(_tag({"event": "tls_failed", "side": "server", "error": "expired",
                               "time": t + 0.01}, conn, client, host))
    if retry == "none":
        return lines
    why = None if retry == "older" else "retry"
    conn, hello = connection(client, host, t + 0.5, passthrough=True, why=why, ids=ids)
    lines += hello
    if retry in ("ok", "failed", "unknown") and conn:
        lines.append({"event": "passthrough_end", "conn": conn, "handshake": retry,
                      "time": t + 0.6})
    return lines
