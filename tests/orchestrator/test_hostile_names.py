"""Names that come from a guest choose no place on the host: a screenshot name in an agent's
answer — traversal, absolute path, separators, control characters, a link planted ahead —
becomes one plain file under the run's ``screenshots/<variant>/``. Whole runs on the fakes."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from testbed._errors import AgentError
from testbed.agent.client import AgentClient
from testbed.orchestrator.rundir import RunDir
from testbed.provider.fakes import FakeAgent, done, png
from testbed.run.files import MAX_NAME, inside, plain_name

from .test_run_fakes import Roles, run

HOSTILE = [
    "../../../../tmp/x", "/etc/passwd", "..", ".", "", "a/b/c", "a\\b", "..\\..\\x",
    "~/.bashrc", ".hidden", "-rf", "x\x00y", "x\ny", "\u202eexe.png", "名字", "a" * 5000,
    "%2e%2e%2fx", "screenshots/../../manifest", "CON", "..." , " ",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_plain_name_is_one_harmless_file_name(name):
    out = plain_name(name)
    assert out and "/" not in out and "\\" not in out and ".." not in out
    assert not out.startswith((".", "-")) and len(out) <= MAX_NAME
    assert out.isascii() and out.isprintable()


@pytest.mark.parametrize("name", HOSTILE)
def test_inside_stays_inside(tmp_path, name):
    root = tmp_path / "run"
    root.mkdir()
    assert inside(root, "variant", name, suffix=".png").resolve().is_relative_to(root)


def test_a_link_planted_where_a_screenshot_goes_is_replaced_not_followed(tmp_path):
    run = RunDir.create(tmp_path / "results", "s")
    target = tmp_path / "outside.txt"
    target.write_text("keep")
    folder = run.path / "screenshots" / "v"
    folder.mkdir(parents=True)
    (folder / "shot.png").symlink_to(target)
    out = run.screenshot("v", "shot", b"png")
    assert target.read_text() == "keep" and out.read_bytes() == b"png" and not out.is_symlink()


def _files_outside(tmp_path: Path, run: Path) -> list[Path]:
    return [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(run)
            and not p.is_relative_to(tmp_path / "ca")]


@pytest.mark.parametrize("name", HOSTILE[:12])
def test_a_hostile_screenshot_name_lands_inside_the_run(tmp_path, name):
    def hostile(steps: list[dict[str, Any]]) -> dict[str, Any]:
        answer = done(steps)
        answer["screenshots"] = {**answer["screenshots"], name: png()}
        return answer

    roles = Roles({"regular": FakeAgent("regular", hostile)})
    outcome = run(tmp_path, roles)
    shots = outcome.run.path / "screenshots"
    assert _files_outside(tmp_path, outcome.run.path) == []
    for event in outcome.run.events():
        for rel in event.screenshots.values():
            path = (outcome.run.path / rel).resolve()
            assert path.is_relative_to(shots.resolve()) and path.is_file(), rel


class _Liar(http.server.BaseHTTPRequestHandler):
    answer: bytes = b"{}"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("answer,message", [
    (b"not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (json.dumps({"ok": True, "screenshots": {"a": "!!notbase64"}}).encode(), "not base64"),
    (json.dumps({"ok": True, "screenshots": [1, 2]}).encode(), "not base64"),
    (json.dumps({"ok": True, "screenshots": {"a": 5}}).encode(), "not base64"),
])
def test_a_lying_agent_is_an_agent_error_not_a_traceback(answer, message):
    handler = type("Liar", (_Liar,), {"answer": answer})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = AgentClient(f"http://127.0.0.1:{server.server_address[1]}", "t", timeout=10)
        with pytest.raises(AgentError, match=message):
            client.run_steps([], {})
    finally:
        server.shutdown()
        server.server_close()


def test_an_honest_answer_still_decodes():
    data = png()
    answer = json.dumps({"ok": True, "screenshots": {"a": base64.b64encode(data).decode()}})
    handler = type("Honest", (_Liar,), {"answer": answer.encode()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = AgentClient(f"http://127.0.0.1:{server.server_address[1]}", "t", timeout=10)
        assert client.run_steps([], {})["screenshots"] == {"a": data}
    finally:
        server.shutdown()
        server.server_close()
