"""The host side of the agent protocol (see ``testbed.agent.server``)."""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

from testbed._errors import AgentError

AGENT_PORT = 8700  # where every guest's agent listens, on its management address
MAX_ANSWER = 256 * 1024 * 1024  # bytes of one answer (screenshots included): a guest is untrusted
CANCEL_SECONDS = 2.0  # an interrupted run asks each agent to stop; it does not wait longer


class AgentClient:
    """Talks to one guest's agent over the management network, with its token."""

    def __init__(self, url: str, token: str, timeout: float = 120.0) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname or "", u.port or 80
        self.url = url
        self._token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Authorization": f"Bearer {self._token}",
                                  "Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read(MAX_ANSWER + 1)
        except (OSError, http.client.HTTPException) as e:
            raise AgentError(f"agent at {self.url} unreachable: {e}") from e
        finally:
            conn.close()
        if len(raw) > MAX_ANSWER:
            raise AgentError(f"agent at {self.url}: an answer over {MAX_ANSWER} bytes")
        try:
            data = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise AgentError(f"agent at {self.url}: an answer that is not JSON: {e}") from e
        if not isinstance(data, dict):
            raise AgentError(f"agent at {self.url}: an answer that is not a JSON object")
        if resp.status != 200:
            raise AgentError(f"agent at {self.url}: {resp.status} {data.get('error', '')}")
        return data

    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "/health", timeout=5))

    def wait_ready(self, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.health()
            except AgentError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def run_steps(self, steps: list[dict[str, Any]], images: dict[str, Path],
                  timeout: float | None = None) -> dict[str, Any]:
        """Run steps; returns the agent's answer with screenshots decoded to bytes."""
        payload = {"steps": steps,
                   "images": {n: base64.b64encode(p.read_bytes()).decode()
                              for n, p in images.items()}}
        answer = dict(self._call("POST", "/steps", payload, timeout=timeout))
        shots = answer.get("screenshots", {})
        try:
            answer["screenshots"] = {str(n): base64.b64decode(b, validate=True)
                                     for n, b in dict(shots).items()}
        except (TypeError, ValueError, binascii.Error) as e:
            raise AgentError(f"agent at {self.url}: screenshots that are not base64") from e
        return answer

    def cancel(self) -> None:
        """The steps running now (and those waiting) end as cancelled; the agent stays up."""
        self._call("POST", "/cancel", {}, timeout=CANCEL_SECONDS)

    def shutdown(self) -> None:
        self._call("POST", "/shutdown", {}, timeout=10)
