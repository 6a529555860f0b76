"""The headless probe and a headless agent (no display), on loopback only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from testbed.agent.client import AgentClient
from testbed.lab.probe import main


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def servers():
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))

    udp.settimeout(0.2)
    stop = threading.Event()

    def echo() -> None:
        while not stop.is_set():
            try:
                data, peer = udp.recvfrom(2048)
            except TimeoutError:
                continue
            udp.sendto(data, peer)

    echoer = threading.Thread(target=echo, daemon=True)
    echoer.start()
    yield http.server_address[1], udp.getsockname()[1]
    stop.set()
    echoer.join(timeout=5)
    http.shutdown()
    http.server_close()
    udp.close()


def test_probe_fetches_each_url_and_says_what_happened(servers, capsys):
    http, udp = servers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()[1]
    closed.close()
    code = main([f"http://127.0.0.1:{http}/ udp://127.0.0.1:{udp}",
                 f"http://127.0.0.1:{dead}/", "file:///etc/passwd"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0].startswith(f"http://127.0.0.1:{http}/: HTTP 200, 5 bytes")
    assert out[1].startswith(f"udp://127.0.0.1:{udp}: 13 bytes back from 127.0.0.1")
    assert "FAILED" in out[2] and "refused" in out[2].lower()
    assert "FAILED: unsupported scheme 'file'" in out[3]
    assert main([]) == 2


def test_a_headless_agent_answers_and_runs_steps_without_a_display(tmp_path, servers):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["TESTBED_AGENT_TOKEN"] = "tok-headless"
    proc = subprocess.Popen([sys.executable, "-m", "testbed.agent", "--listen",
                             f"127.0.0.1:{port}", "--workdir", str(tmp_path)], env=env,
                            stderr=subprocess.DEVNULL)
    try:
        client = AgentClient(f"http://127.0.0.1:{port}", "tok-headless", timeout=30)
        client.wait_ready()
        assert client.health()["screen"] is None
        answer = client.run_steps([
            {"run": [sys.executable, "-m", "testbed.lab.probe",
                     f"http://127.0.0.1:{servers[0]}/"]},
            {"sleep": 2}], {})
        assert answer["ok"], answer
        assert "HTTP 200" in (tmp_path / "app-0.log").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
