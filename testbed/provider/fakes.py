"""In-tree fakes of the roles, for tests of everything above them without root: a gateway, a
guest pool and an agent (in the spirit of httpx's ``MockTransport``: a handler answers).

* ``FakeGateway`` starts nothing but two small stand-ins for tcpdump and mitmdump (they print
  what the real ones print, write an empty pcap and a CA file, and stop on SIGTERM), and
  records what pools plugged into it.
* ``FakePool`` hands out ``FakeAgent``s; a guest can be made to fail, or to never come up.
* ``FakeAgent`` answers every ``run_steps`` with its ``handler`` (default: every step done,
  a small PNG for each screenshot); it can be made never to become ready.

Every fake records its calls, so a test can check what a user would see and what was torn
down.
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from testbed._errors import AgentError, LabError
from testbed.agent.steps import describe
from testbed.lab.internet_map import InternetMap
from testbed.provider.abstracts import Gateway, GatewayHandle, GuestHandle, GuestPool
from testbed.provider.gateway import GATEWAY_IP, GUEST_NET, MITM_PORT, guest_address
from testbed.run.vantage import Vantage
from testbed.scenario.model import Route

Handler = Callable[[list[dict[str, Any]]], dict[str, Any]]

# Stand-ins for tcpdump and mitmdump: the lines the capture classes wait for, the files they
# expect, the statistics tcpdump prints on SIGTERM.
_TOOL = r"""
import signal, sys, time
tool, args = sys.argv[1], sys.argv[2:]
def stop(*_):
    if tool == "tcpdump":
        print("0 packets captured\n0 packets received by filter\n0 packets dropped by kernel")
    sys.stdout.flush()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
if tool == "tcpdump":
    with open(args[args.index("-w") + 1], "wb") as f:  # an empty pcap: the header only
        f.write(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    print("listening on fake0, link-type EN10MB (Ethernet)", flush=True)
else:
    confdir = next(a.split("=", 1)[1] for a in args if a.startswith("confdir="))
    with open(confdir + "/mitmproxy-ca-cert.pem", "w") as f:
        f.write("fake CA\n")
    print("HTTP(S) proxy (transparent) listening at *:8080.", flush=True)
while True:
    time.sleep(1)
"""


def png(size: tuple[int, int] = (4, 3)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "white").save(buf, format="PNG")
    return buf.getvalue()


def done(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The default answer: every step done, a PNG for each screenshot."""
    now = time.time()
    return {"ok": True, "error": None,
            "results": [{"step": describe(s), "outcome": "done", "start": now, "end": now}
                        for s in steps],
            "screenshots": {str(s["screenshot"]): png() for s in steps if "screenshot" in s}}


def failed(steps: list[dict[str, Any]], error: str) -> dict[str, Any]:
    """An answer whose first step failed, with the failure screenshot the real agent takes."""
    now = time.time()
    return {"ok": False, "error": error,
            "results": [{"step": describe(steps[0]) if steps else "", "outcome": f"failed: {error}",
                         "start": now, "end": now}],
            "screenshots": {"failure": png()}}


def action_of(steps: list[dict[str, Any]]) -> str:
    """The action these steps belong to, by its screenshot (each app action takes one named
    after itself); "" when it takes none."""
    return next((str(s["screenshot"]) for s in steps if "screenshot" in s), "")


class FakeAgent:
    def __init__(self, variant: str, handler: Handler = done, ready: bool = True) -> None:
        self.variant, self.handler, self.ready = variant, handler, ready
        self.calls: list[list[dict[str, Any]]] = []
        self.images: set[str] = set()
        self.cancelled = threading.Event()  # set by cancel(); a handler may watch it

    def health(self) -> dict[str, Any]:
        if not self.ready:
            raise AgentError(f"agent of {self.variant} (fake) unreachable: not ready")
        return {"ok": True, "display": None, "screen": [1024, 768]}

    def run_steps(self, steps: list[dict[str, Any]], images: dict[str, Path],
                  timeout: float | None = None) -> dict[str, Any]:
        self.calls.append(steps)
        self.images.update(images)
        return self.handler(steps)

    def cancel(self) -> None:
        self.cancelled.set()


class FakeGateway(Gateway):
    def __init__(self, workdir: Path, internet: InternetMap | None = None,
                 tag: str = "fa4e") -> None:
        self.workdir, self.tag = workdir, tag
        self.started = False
        self.plugs: list[tuple[str, str, str | None]] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.teardowns = 0
        self.routes: dict[str, Route] = {}

    def plan_routes(self, routes: Mapping[str, Route]) -> None:
        """Every route is taken and recorded, none is built: the fake's guests reach nothing."""
        self.routes = dict(routes)

    def vantages(self) -> dict[str, Vantage]:
        return {v: Vantage(route=r.kind, label=r.label) for v, r in self.routes.items()}

    def start(self) -> GatewayHandle:
        self.started = True
        return GatewayHandle(capture_interface="fake0", guest_network=GUEST_NET,
                             infrastructure={GATEWAY_IP: "gateway (fake)"}, mitm_port=MITM_PORT)

    def spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        tool = "tcpdump" if Path(argv[0]).name == "tcpdump" else "mitmdump"
        with log.open("ab") as out:
            p = subprocess.Popen([sys.executable, "-c", _TOOL, tool, *argv[1:]], stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def plug(self, port: str, peer: str, peer_ns: str | None, isolated: bool = True) -> None:
        self.plugs.append((port, peer, peer_ns))

    def teardown(self) -> None:
        self.teardowns += 1
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()


class FakePool(GuestPool):
    """Guests that are only a ``FakeAgent`` each. ``fail``: variant → the error its start
    raises; ``hang``: variants whose start never returns (until teardown)."""

    name = "fake"

    def __init__(self, gateway: Gateway, agents: dict[str, FakeAgent] | None = None,
                 fail: dict[str, str] | None = None, hang: tuple[str, ...] = (),
                 start_timeout: float = 5.0, concurrent: bool = True) -> None:
        self.gateway = gateway
        self.agents = dict(agents or {})
        self.fail, self.hang = dict(fail or {}), set(hang)
        self.start_timeout, self.concurrent = start_timeout, concurrent
        self.started: list[str] = []
        self.running: list[str] = []
        self.prepared = False
        self.teardowns = 0
        self._released = threading.Event()

    def prepare(self) -> None:
        self.prepared = True

    def start_guest(self, variant: str, index: int, trust: Path | None) -> GuestHandle:
        self.started.append(variant)
        self.running.append(variant)
        self.gateway.plug(f"g{index}", "eth0", f"fake-{variant}")
        if variant in self.hang:
            self._released.wait()
            raise LabError(f"{variant} (fake) was torn down while starting")
        if variant in self.fail:
            raise LabError(self.fail[variant])
        agent = self.agents.setdefault(variant, FakeAgent(variant))
        return GuestHandle(variant=variant, address=guest_address(index), agent=agent,
                           workdir=Path("/nonexistent") / variant, env={"python": sys.executable})

    def teardown(self) -> None:
        self.teardowns += 1
        self._released.set()
        self.running.clear()
