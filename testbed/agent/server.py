"""The in-guest agent: an HTTP service that runs app-profile steps with pyautogui.

Started inside the guest's desktop session (it needs ``DISPLAY``), listening only on the
management network. Every request must carry ``Authorization: Bearer <token>`` (the token
comes from ``TESTBED_AGENT_TOKEN``, never from the command line).

    GET  /health     {"ok": true, "display": ":N", "screen": [w, h]}
    POST /steps      {"steps": [...], "images": {"name.png": base64}}
                     -> {"ok", "results": [{"step", "outcome", "start", "end"}], "error",
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

from testbed.agent.steps import StepContext, StepFailed, describe, grab, png, run_step


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

    def run_steps(self, steps: list[dict[str, Any]], images: dict[str, str]) -> dict[str, Any]:
        decoded = {n: Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB")
                   for n, b in images.items()}
        ctx = StepContext(images=decoded, spawn=self.spawn)
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
                                    "start": start, "end": time.time()})
                    try:
                        ctx.screenshots["failure"] = png(grab())
                    except Exception:  # the failure screenshot is best effort
                        pass
                    break
                results.append({"step": _safe(step), "outcome": outcome,
                                "start": start, "end": time.time()})
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
            length = int(self.headers.get("Content-Length", "0"))
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as e:
                self._reply(400, {"ok": False, "error": f"bad JSON: {e}"})
                return
            if self.path == "/steps":
                self._reply(200, agent.run_steps(list(body.get("steps", [])),
                                                 dict(body.get("images", {}))))
            elif self.path == "/cancel":
                agent.epoch += 1
                self._reply(200, {"ok": True})
            elif self.path == "/shutdown":
                agent.stop_children()
                self._reply(200, {"ok": True})
                threading.Thread(target=server_ref[0].shutdown, daemon=True).start()
            else:
                self._reply(404, {"ok": False, "error": f"no such endpoint {self.path}"})

    return Handler


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="testbed-agent", description="The in-guest testbed agent.")
    p.add_argument("--listen", required=True, help="HOST:PORT on the management network")
    p.add_argument("--workdir", required=True, type=Path)
    args = p.parse_args(argv)
    token = os.environ.get("TESTBED_AGENT_TOKEN", "")
    if not token:
        print("testbed-agent: TESTBED_AGENT_TOKEN is not set", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    host, _, port = args.listen.rpartition(":")
    agent = Agent(token, args.workdir)
    ref: list[ThreadingHTTPServer] = []
    server = ThreadingHTTPServer((host, int(port)), make_handler(agent, ref))
    ref.append(server)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    finally:
        agent.stop_children()
    return 0
