"""The agent against malformed and hostile authorised requests: a real agent server on
loopback (no display needed: nothing here reaches the GUI). Every malformed request gets a
4xx with a sentence saying what is wrong — never a handler traceback, never a step run."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from testbed.agent.client import AgentClient
from testbed.agent.requests import (
    MAX_ARGV,
    MAX_BODY,
    MAX_FIELD,
    MAX_IMAGES,
    MAX_NESTING,
    MAX_STEPS,
)
from testbed.agent.server import MAX_CONNECTIONS, Agent, BoundedServer, make_handler

TOKEN = "tok-hardening"


def _png() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2), "red").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture
def server(tmp_path):  # type: ignore[no-untyped-def]
    agent = Agent(TOKEN, tmp_path)
    ref: list[Any] = []
    srv = BoundedServer(("127.0.0.1", 0), make_handler(agent, ref), MAX_CONNECTIONS)
    ref.append(srv)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1], agent
    srv.shutdown()
    srv.server_close()


def post(port: int, body: bytes, headers: dict[str, str] | None = None,
         path: str = "/steps") -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", path)
        hdrs = {"Authorization": f"Bearer {TOKEN}", "Content-Length": str(len(body)),
                **(headers or {})}
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def j(value: Any) -> bytes:
    return json.dumps(value).encode()


STEP_CASES: dict[str, Any] = {
    "a step that is a number": 1,
    "a step that is a list": ["run", "x"],
    "a step with no verb": {},
    "a step with two verbs": {"run": ["true"], "press": "a"},
    "an unknown verb": {"launch_rocket": 1},
    "an unknown option": {"press": "a", "timeout": 1},
    "run: a number": {"run": 5},
    "run: an empty list": {"run": []},
    "run: an empty string": {"run": ""},
    "run: words that are numbers": {"run": [1, 2]},
    "run: a NUL in a word": {"run": ["true\u0000x"]},
    "run: too many words": {"run": ["x"] * (MAX_ARGV + 1)},
    "run: an oversized word": {"run": ["x" * (MAX_FIELD + 1)]},
    "click_image: a number": {"click_image": 5},
    "click_image: a path": {"click_image": "../../etc/passwd"},
    "wait_image: an absolute path": {"wait_image": "/etc/shadow"},
    "absent_image: a hidden name": {"absent_image": ".x.png"},
    "wait_window: a list": {"wait_window": ["Buddy List"]},
    "wait_window: oversized": {"wait_window": "a" * (MAX_FIELD + 1)},
    "wait_window: a confidence": {"wait_window": "Buddy List", "confidence": 0.9},
    "wait_window: a negative timeout": {"wait_window": "Buddy List", "timeout": -1},
    "type: a number": {"type": 5},
    "type: null": {"type": None},
    "type: oversized": {"type": "a" * (MAX_FIELD + 1)},
    "type: secret not a boolean": {"type": "a", "secret": "yes"},
    "press: a list": {"press": ["a"]},
    "hotkey: a string": {"hotkey": "ctrl"},
    "hotkey: an empty list": {"hotkey": []},
    "hotkey: numbers": {"hotkey": [1, 2]},
    "screenshot: a traversal": {"screenshot": "../../../../tmp/x"},
    "screenshot: empty": {"screenshot": ""},
    "screenshot: a slash": {"screenshot": "a/b"},
    "screenshot: a number": {"screenshot": 7},
    "sleep: text": {"sleep": "1"},
    "sleep: negative": {"sleep": -1},
    "sleep: a billion seconds": {"sleep": 1e9},
    "sleep: a boolean": {"sleep": True},
    "timeout: text": {"wait_image": "a.png", "timeout": "abc"},
    "timeout: a boolean": {"wait_image": "a.png", "timeout": True},
    "timeout: negative": {"wait_image": "a.png", "timeout": -5},
    "confidence: above 1": {"wait_image": "a.png", "confidence": 2},
    "confidence: zero": {"wait_image": "a.png", "confidence": 0},
    "offset: one number": {"click_image": "a.png", "offset": [1]},
    "offset: text": {"click_image": "a.png", "offset": ["a", "b"]},
    "offset: booleans": {"click_image": "a.png", "offset": [True, 1]},
    "offset: huge": {"click_image": "a.png", "offset": [10**9, 0]},
}

BODY_CASES: dict[str, bytes] = {
    "not JSON": b"{",
    "a NUL byte": b'{"steps": [\x00]}',
    "not UTF-8": b"\xff\xfe\xfd",
    "a JSON list": b"[]",
    "a JSON number": b"1",
    "a JSON string": b'"steps"',
    "JSON null": b"null",
    "NaN where a number goes": b'{"steps": [{"sleep": NaN}]}',
    "deep nesting": b"[" * (MAX_NESTING * 100) + b"]" * (MAX_NESTING * 100),
    "deep nesting inside steps": b'{"steps": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "an unknown field": j({"stepz": []}),
    "steps: a mapping": j({"steps": {}}),
    "steps: a string": j({"steps": "run"}),
    "too many steps": j({"steps": [{"sleep": 0}] * (MAX_STEPS + 1)}),
    "images: a list": j({"images": []}),
    "images: a number as data": j({"images": {"a.png": 5}}),
    "images: not base64": j({"images": {"a.png": "!!!"}}),
    "images: not an image": j({"images": {"a.png": base64.b64encode(b"hello").decode()}}),
    "images: a path as the name": j({"images": {"../a.png": _png()}}),
    "too many images": j({"images": {f"i{n}.png": _png() for n in range(MAX_IMAGES + 1)}}),
    **{f"step: {name}": j({"steps": [step]}) for name, step in STEP_CASES.items()},
}


@pytest.mark.parametrize("case", list(BODY_CASES))
def test_malformed_request_is_a_clear_400(server, capsys, case):
    port, agent = server
    status, answer = post(port, BODY_CASES[case])
    assert status == 400, f"{case}: {status} {answer}"
    assert answer["ok"] is False and answer["error"], case
    assert "\n" not in answer["error"] and len(answer["error"]) < 400, answer["error"]
    assert agent.children == [], f"{case}: a program was started"
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("length,status", [("abc", 400), ("-5", 400),
                                           (str(MAX_BODY + 1), 413), (str(10**15), 413)])
def test_bad_or_oversized_content_length_is_refused_before_reading(server, capsys, length,
                                                                   status):
    port, _ = server
    got, answer = post(port, b"", headers={"Content-Length": length})
    assert got == status, answer
    assert "Content-Length" in answer["error"] or "bytes" in answer["error"], answer
    assert "Traceback" not in capsys.readouterr().err


def test_a_body_shorter_than_announced_is_refused(server, capsys):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(f"POST /steps HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                  f"Content-Length: 100\r\n\r\n{{}}".encode())
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    text = reply.decode()
    assert text.startswith("HTTP/1.0 400") and "ended after 2 of 100 bytes" in text
    assert "Traceback" not in capsys.readouterr().err


def test_unknown_endpoint_is_404_and_a_valid_request_still_runs(server):
    port, _ = server
    assert post(port, b"{}", path="/nope")[0] == 404
    status, answer = post(port, j({"steps": [{"sleep": 0}], "images": {"a.png": _png()}}))
    assert status == 200 and answer["ok"], answer


def test_connections_beyond_the_bound_get_503_then_service_resumes(server):
    port, _ = server
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)  # every idle connection holds its slot now
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.0 503")
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 10
    while True:
        status, _ = post(port, j({"steps": []}))
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("how", ["fd", "env"])
def test_the_token_is_kept_from_the_programs_the_agent_starts(tmp_path, how):
    token = f"tok-{how}-must-not-leak"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    cmd = [sys.executable, "-m", "testbed.agent", "--listen", f"127.0.0.1:{port}",
           "--workdir", str(tmp_path)]
    pass_fds: tuple[int, ...] = ()
    if how == "fd":
        read, write = os.pipe()
        os.write(write, token.encode())
        os.close(write)
        cmd += ["--token-fd", str(read)]
        pass_fds = (read,)
    else:
        env["TESTBED_AGENT_TOKEN"] = token
    proc = subprocess.Popen(cmd, env=env, pass_fds=pass_fds, stderr=subprocess.DEVNULL)
    if pass_fds:
        os.close(pass_fds[0])
    try:
        client = AgentClient(f"http://127.0.0.1:{port}", token, timeout=30)
        client.wait_ready()
        dump = tmp_path / "child.txt"
        code = ("import os,sys; open(sys.argv[1],'w').write(repr(dict(os.environ)) + "
                "repr(sorted(os.listdir('/proc/self/fd'))))")
        answer = client.run_steps([{"run": [sys.executable, "-c", code, str(dump)]}], {})
        assert answer["ok"], answer
        deadline = time.monotonic() + 10
        while not dump.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        seen = dump.read_text()
        assert token not in seen and "TESTBED_AGENT_TOKEN" not in seen
        assert token not in Path(f"/proc/{proc.pid}/cmdline").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
