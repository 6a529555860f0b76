"""mitmproxy flow files (`capture/flows.mitm`) as plain records.

Contract:
- `read_flows(path)` streams the file with `mitmproxy.io.FlowReader` (one flow in memory
  at a time) and yields an `HttpRecord` per HTTP flow (WebSocket messages included) and a
  `StreamRecord` per TCP/UDP flow; other flow kinds (DNS, ...) are skipped. `read_http`
  and `read_streams` yield one kind only.
- An empty file holds no flows (mitmdump creates it at start).
- A file that is not a flow file, or damage found before any flow, raises `AnalysisError`
  naming the file. Damage after some flows (mitmdump killed mid-write): every flow before
  it has been yielded; then, without `on_warning`, `AnalysisError` is raised; with
  `on_warning`, the message (file name, byte offset, flows read) is passed to it and
  reading stops quietly.

In the lab mitmproxy runs in transparent mode: `server` is the original destination
(`server_conn.address`) and `client` the guest (`client_conn.peername`).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from testbed._errors import AnalysisError

__all__ = ["HttpRecord", "Message", "StreamRecord", "read_flows", "read_http", "read_streams"]

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Message:
    """One TCP/UDP/WebSocket message."""

    from_client: bool
    content: bytes
    timestamp: float


@dataclass(frozen=True, slots=True)
class HttpRecord:
    """One HTTP request (and its response, if any). Bodies are decoded
    (Content-Encoding undone where possible, raw otherwise); `host` is the Host header
    (or HTTP/2 :authority), '' when absent; `status` is None without a response."""

    id: str
    client: Address
    server: Address
    sni: str
    host: str
    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: bytes
    status: int | None
    response_headers: tuple[tuple[str, str], ...]
    response_body: bytes
    timestamp_start: float
    messages: tuple[Message, ...] = ()  # WebSocket messages


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One TCP or UDP flow that mitmproxy relayed without an HTTP layer."""

    id: str
    proto: str  # "tcp" / "udp"
    client: Address
    server: Address
    sni: str
    timestamp_start: float
    messages: tuple[Message, ...]


FlowRecord = HttpRecord | StreamRecord


class _Clamped:
    """A read-only file view whose reads never ask for more than the file holds (a
    damaged tnetstring length prefix can otherwise claim up to a terabyte)."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f = f
        self._size = size

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            return self._f.read()
        if n > 4096:
            n = max(0, min(n, self._size - self._f.tell()))
        return self._f.read(n)

    def peek(self, n: int) -> bytes:
        return self._f.peek(n)[:n]  # type: ignore[attr-defined,no-any-return]

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._f.seek(pos, whence)


def _addr(value: Any) -> Address:
    if not value:
        return ("", 0)
    try:
        return (str(value[0]), int(value[1]))
    except (TypeError, ValueError, IndexError):
        return (str(value), 0)


def _headers(headers: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in headers.items(multi=True))


def _body(message: Any) -> bytes:
    if message is None:
        return b""
    try:
        content = message.get_content(strict=False)
    except ValueError:
        content = message.raw_content
    return content or b""


def _record(f: Any) -> FlowRecord | None:
    from mitmproxy import http, tcp, udp  # 0.1 s to import: only when a flow file is read

    client = _addr(f.client_conn.peername)
    server = _addr(f.server_conn.address)
    sni = f.client_conn.sni or ""
    if isinstance(f, http.HTTPFlow):
        req = f.request
        resp = f.response
        ws = f.websocket
        messages = tuple(
            Message(bool(m.from_client), bytes(m.content), float(m.timestamp))
            for m in (ws.messages if ws is not None else ())
        )
        return HttpRecord(
            id=f.id,
            client=client,
            server=server,
            sni=sni,
            host=req.host_header or "",
            method=req.method,
            url=req.url,
            request_headers=_headers(req.headers),
            request_body=_body(req),
            status=resp.status_code if resp is not None else None,
            response_headers=_headers(resp.headers) if resp is not None else (),
            response_body=_body(resp),
            timestamp_start=float(req.timestamp_start),
            messages=messages,
        )
    if isinstance(f, (tcp.TCPFlow, udp.UDPFlow)):
        return StreamRecord(
            id=f.id,
            proto="tcp" if isinstance(f, tcp.TCPFlow) else "udp",
            client=client,
            server=server,
            sni=sni,
            timestamp_start=float(f.client_conn.timestamp_start or f.timestamp_created),
            messages=tuple(
                Message(bool(m.from_client), bytes(m.content), float(m.timestamp))
                for m in f.messages
            ),
        )
    return None


def flow_records(
    flows: str | os.PathLike[str] | Iterable[FlowRecord],
    on_warning: Callable[[str], None] | None = None,
) -> Iterable[FlowRecord]:
    """`read_flows(flows, on_warning)` for a flow file; the records themselves otherwise."""
    return read_flows(flows, on_warning) if isinstance(flows, str | os.PathLike) else flows


def ip_text(value: str) -> str | None:
    """The canonical text of an IP address; None when `value` is not one."""
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        return None


def read_flows(
    flows_path: str | os.PathLike[str], on_warning: Callable[[str], None] | None = None
) -> Iterator[FlowRecord]:
    """Stream the HTTP and TCP/UDP flows of a mitmproxy flow file, in file order.

    Raises `AnalysisError` for an unreadable file, a file that is not a flow file, or
    damage before the first flow; damage after it raises too, unless `on_warning` is
    given (then it gets the message and reading stops). See the module docstring.
    """
    from mitmproxy.io import FlowReader

    path = Path(flows_path)
    name = path.name
    try:
        f = open(path, "rb")
        size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise AnalysisError(f"cannot read flow file {path}: {e.strerror or e}") from e
    with f:
        stream = iter(FlowReader(_Clamped(f, size)).stream())  # type: ignore[arg-type]
        count = 0
        while True:
            offset = f.tell()
            try:
                flow = next(stream, None)
                if flow is None:
                    return
                record = _record(flow)
            except Exception as e:  # a deserializer fed damaged bytes can raise anything
                cause = str(e) or type(e).__name__
                if e.__cause__ is not None and str(e.__cause__):
                    cause = f"{cause} ({e.__cause__})"
                cause = cause if len(cause) <= 200 else cause[:200] + "..."
                try:
                    at_end = f.tell() >= size
                except (OSError, ValueError):
                    at_end = False
                what = (
                    f"truncated in the flow record starting at byte {offset}"
                    if at_end
                    else f"damaged flow record at byte {offset}"
                )
                if count == 0:
                    raise AnalysisError(
                        f"{name}: not a readable mitmproxy flow file ({what}, "
                        f"before any flow: {cause})"
                    ) from e
                message = f"{name}: {what} after {count} flow(s); stopped reading: {cause}"
                if on_warning is None:
                    raise AnalysisError(message) from e
                on_warning(message)
                return
            count += 1
            if record is not None:
                yield record


R = TypeVar("R", HttpRecord, StreamRecord)


def _of_kind(flows_path: str | os.PathLike[str], kind: type[R],
             on_warning: Callable[[str], None] | None) -> Iterator[R]:
    return (r for r in read_flows(flows_path, on_warning) if isinstance(r, kind))


def read_http(
    flows_path: str | os.PathLike[str], on_warning: Callable[[str], None] | None = None
) -> Iterator[HttpRecord]:
    """The `HttpRecord`s of `read_flows(flows_path, on_warning)`."""
    return _of_kind(flows_path, HttpRecord, on_warning)


def read_streams(
    flows_path: str | os.PathLike[str], on_warning: Callable[[str], None] | None = None
) -> Iterator[StreamRecord]:
    """The `StreamRecord`s (TCP/UDP flows) of `read_flows(flows_path, on_warning)`."""
    return _of_kind(flows_path, StreamRecord, on_warning)
