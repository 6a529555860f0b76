"""The in-guest agent: an HTTP service that runs app-profile steps with pyautogui.

Started inside the guest's desktop session (it needs ``DISPLAY``), listening only on the
management network. Every request must carry ``Authorization: Bearer <token>``. The token
comes from the file descriptor ``--token-fd`` (the lab) or from ``TESTBED_AGENT_TOKEN`` (VMs),
never from the command line; either way it is gone from the environment before any program is
started, and the agent's memory and ``/proc`` files are not readable by those programs
(not dumpable).

Bounds: a body of at most ``MAX_BODY`` bytes, ``MAX_CONNECTIONS`` requests at a time (more are
answered 503), ``READ_TIMEOUT`` s for a slow client; a malformed authorised request gets a 400
that says what is wrong (``testbed.agent.requests``), never a traceback.

    GET  /health     {"ok": true, "display": ":N", "screen": [w, h]}
    POST /steps      {"steps": [...], "images": {"name.png": base64}}
                     -> {"ok", "results": [{"step", "outcome", "start", "end", "detail"?}],
                         "error",
                         "screenshots": {"name": base64}}   (a failure adds "failure.png")
    POST /cancel     the steps running now (and those waiting) stop before their next step,
                     ending with error "cancelled"; later requests run as usual
    POST /shutdown   stops the programs the agent started, then the agent
"""

from __future__ import annotations

import argparse
import base64
import hmac
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

from testbed.agent.requests import MAX_BODY, BadRequest, parse_body, steps_request
from testbed.agent.steps import StepContext, StepFailed, describe, grab, png, run_step

TOKEN_ENV = "TESTBED_AGENT_TOKEN"
MAX_CONNECTIONS = 16   # requests served at the same time
READ_TIMEOUT = 30.0    # seconds a client may take to send its request


class Agent:
    def __init__(self, token: str, workdir: Path) -> None:
        self.token = token
        self.workdir = workdir
        self.lock = threading.Lock()
        self.children: list[subprocess.Popen[bytes]] = []
        self.epoch = 0  # raised by each cancel: steps sent before it stop

    def spawn(self, argv: list[str]) -> int:
        log = open(self.workdir / f"app-{len(self.children)}.log", "ab")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=self.workdir,
        )
        self.children.append(proc)
        return proc.pid

    def run_steps(self, steps: list[dict[str, Any]], images: dict[str, bytes]) -> dict[str, Any]:
        ctx = StepContext(images=open_images(images), spawn=self.spawn)
        results: list[dict[str, Any]] = []
        error = None
        epoch = self.epoch
        with self.lock:
            for step in steps:
                start = time.time()
                if self.epoch != epoch:
                    error = "cancelled"
                    break
                try:
                    outcome = run_step(ctx, step)
                except StepFailed as e:
                    error = str(e)
                    results.append({"step": _safe(step), "outcome": f"failed: {e}",
                                    "start": start, "end": time.time(),
                                    **_detail(ctx.detail)})
                    try:
                        ctx.screenshots["failure"] = png(grab())
                    except Exception:  # the failure screenshot is best effort
                        pass
                    break
                results.append({"step": _safe(step), "outcome": outcome,
                                "start": start, "end": time.time(), **_detail(ctx.detail)})
        return {
            "ok": error is None, "results": results, "error": error,
            "screenshots": {n: base64.b64encode(b).decode() for n, b in ctx.screenshots.items()},
        }

    def stop_children(self) -> None:
        for p in self.children:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.children:
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def open_images(images: dict[str, bytes]) -> dict[str, Image.Image]:
    out = {}
    for name, data in images.items():
        try:
            out[name] = Image.open(io.BytesIO(data)).convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise BadRequest(f"image {name} is not a readable image: {e}") from e
    return out


def _detail(detail: dict[str, Any] | None) -> dict[str, Any]:
    """A step's record (a download's hops and digest), under ``detail`` when it has one."""
    return {} if detail is None else {"detail": detail}


def _safe(step: dict[str, Any]) -> str:
    try:
        return describe(step)
    except StepFailed as e:
        return str(e)


def make_handler(agent: Agent, server_ref: list[ThreadingHTTPServer]) -> type:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            status = args[1] if len(args) > 1 else ""
            sys.stderr.write(f"agent: {self.command} {self.path} {status}\n")

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        timeout = READ_TIMEOUT  # per socket operation: a slow client does not hold a slot

        def _body(self) -> dict[str, Any]:
            raw_length = self.headers.get("Content-Length")
            if raw_length is None:
                return {}
            try:
                length = int(raw_length)
            except ValueError:
                raise BadRequest(f"Content-Length is not a number: {raw_length[:40]!r}") from None
            if length < 0:
                raise BadRequest(f"Content-Length is negative: {length}")
            if length > MAX_BODY:
                self.close_connection = True
                raise BadRequest(f"the body is {length} bytes (at most {MAX_BODY})", 413)
            try:
                raw = self.rfile.read(length)
            except OSError as e:  # a timeout or a reset while the body came
                self.close_connection = True
                raise BadRequest(f"the body did not arrive: {e}", 408) from e
            if len(raw) < length:
                raise BadRequest(f"the body ended after {len(raw)} of {length} bytes")
            return parse_body(raw)

        def _authorised(self) -> bool:
            got = self.headers.get("Authorization", "")
            if hmac.compare_digest(got.encode(), f"Bearer {agent.token}".encode()):
                return True
            self._reply(401, {"ok": False, "error": "bad or missing token"})
            return False

        def do_GET(self) -> None:
            if not self._authorised():
                return
            if self.path == "/health":
                try:
                    screen: list[int] | None = list(grab().size)
                except Exception:  # a headless guest (no display): steps without the GUI
                    screen = None
                self._reply(200, {"ok": True, "display": os.environ.get("DISPLAY"),
                                  "screen": screen})
            else:
                self._reply(404, {"ok": False, "error": f"no such endpoint {self.path}"})

        def do_POST(self) -> None:
            if not self._authorised():
                return
            try:
                body = self._body()
                if self.path == "/steps":
                    steps, images = steps_request(body)
                    answer = agent.run_steps(steps, images)
                    self._reply(200, answer)
                elif self.path == "/cancel":
                    agent.epoch += 1
                    self._reply(200, {"ok": True})
                elif self.path == "/shutdown":
                    agent.stop_children()
                    self._reply(200, {"ok": True})
                    threading.Thread(target=server_ref[0].shutdown, daemon=True).start()
                else:
                    self._reply(404, {"ok": False, "error": f"no such endpoint {self.path}"})
            except BadRequest as e:
                status = e.args[1] if len(e.args) > 1 else 400
                self._reply(status, {"ok": False, "error": str(e.args[0])})
            except Exception as e:  # a bug of ours: one line to the log and the client
                sys.stderr.write(f"agent: {self.command} {self.path}: "
                                 f"{type(e).__name__}: {e}\n")
                self._reply(500, {"ok": False, "error": f"internal error: {type(e).__name__}"})

    return Handler


class BoundedServer(ThreadingHTTPServer):
    """At most ``MAX_CONNECTIONS`` requests at a time; one more is told 503 and closed."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, limit: int) -> None:
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(limit)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: "
                                b"application/json\r\nConnection: close\r\n\r\n"
                                b'{"ok": false, "error": "too many connections"}')
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def read_token(fd: int | None) -> str:
    """The token, from ``fd`` (then closed) or the environment; removed from the environment
    so no program the agent starts inherits it."""
    env_token = os.environ.pop(TOKEN_ENV, "")
    if fd is None:
        return env_token
    with os.fdopen(fd, "rb") as f:
        return f.read(4096).decode("ascii", errors="replace").strip()


def not_dumpable() -> None:
    """No process of the same user (the app under test) may read our memory or environ."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):  # not Linux: nothing to do
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="testbed-agent", description="The in-guest testbed agent.")
    p.add_argument("--listen", required=True, help="HOST:PORT on the management network")
    p.add_argument("--workdir", required=True, type=Path)
    p.add_argument("--token-fd", type=int, help="read the token from this file descriptor")
    args = p.parse_args(argv)
    token = read_token(args.token_fd)
    if not token:
        print(f"testbed-agent: no token (--token-fd or {TOKEN_ENV})", file=sys.stderr)
        return 2
    not_dumpable()
    args.workdir.mkdir(parents=True, exist_ok=True)
    host, _, port = args.listen.rpartition(":")
    agent = Agent(token, args.workdir)
    ref: list[ThreadingHTTPServer] = []
    server = BoundedServer((host, int(port)), make_handler(agent, ref), MAX_CONNECTIONS)
    ref.append(server)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever(poll_interval=0.1)  # a SIGTERM ends it within 0.1 s
    finally:
        agent.stop_children()
    return 0
