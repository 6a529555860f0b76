"""mitmdump in transparent mode on the gateway: decrypted TCP flows, written with ``-w``.

Runs in the gateway namespace, which holds the REDIRECT rule (mitmproxy reads the original
destination from conntrack). Upstream certificates are checked against ``upstream_trust`` (a
PEM bundle of what the guests trust without interception), so that a server broken without
interception fails under it too; without one they are not checked (``ssl_insecure``). Hosts
matching a pattern of ``passthrough`` are never intercepted, nor the clients given to
:meth:`Mitmdump.pass_through` once their addresses are known (the addon re-reads its rules
file). The guests trust mitmproxy's CA,
which lives in a ``confdir`` kept between runs. Stopped with SIGTERM so the flow file is
complete and the addon writes each connection's TLS outcome.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from testbed._errors import CaptureError
from testbed.capture.process import await_ready, terminate
from testbed.provider.abstracts import Gateway
from testbed.run.files import TLS, TLS_RULES

CA_FILE = "mitmproxy-ca-cert.pem"


def mitmdump_path() -> str:
    return str(Path(sys.executable).with_name("mitmdump"))


class Mitmdump:
    addon = Path(__file__).with_name("mitm_addon.py")  # what logs TLS and decides outcomes

    def __init__(self, gateway: Gateway, port: int, flows: Path, confdir: Path,
                 log: Path, upstream_trust: Path | None = None,
                 passthrough: tuple[str, ...] = ()) -> None:
        self.gateway, self.port, self.flows, self.confdir, self.log = (
            gateway, port, flows, confdir, log)
        self.upstream_trust, self.passthrough = upstream_trust, passthrough
        self.pass_clients: tuple[str, ...] = ()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def tls_log(self) -> Path:
        """SNI, TLS failures, retries and outcomes, as JSON lines (see ``mitm_addon``)."""
        return self.flows.with_name(Path(TLS).name)

    @property
    def rules(self) -> Path:
        """What the addon passes through unopened: ``{"clients": [...], "hosts": [...]}``."""
        return self.flows.with_name(Path(TLS_RULES).name)

    def pass_through(self, clients: Iterable[str] = (), hosts: Iterable[str] = ()) -> None:
        """From now on, leave the TLS of these client addresses and host patterns (fnmatch, on
        the SNI or else the address) unopened: the scenario's rules."""
        self.passthrough = (*self.passthrough, *hosts)
        self.pass_clients = (*self.pass_clients, *clients)
        tmp = self.rules.with_suffix(".tmp")
        tmp.write_text(json.dumps({"clients": list(self.pass_clients),
                                   "hosts": list(self.passthrough)}), encoding="utf-8")
        tmp.replace(self.rules)

    @property
    def ca_cert(self) -> Path:
        return self.confdir / CA_FILE

    def start(self, timeout: float = 30.0) -> None:
        self.confdir.mkdir(parents=True, exist_ok=True)
        self.pass_through()
        argv = [mitmdump_path(), "--mode", "transparent", "--listen-port", str(self.port),
                "--set", f"confdir={self.confdir}", "--set", "flow_detail=0",
                "-w", str(self.flows), "-s", str(self.addon),
                "--set", f"testbed_tls_log={self.tls_log}",
                "--set", f"testbed_rules={self.rules}"]
        argv += (["--set", f"ssl_verify_upstream_trusted_ca={self.upstream_trust}"]
                 if self.upstream_trust else ["--set", "ssl_insecure=true"])
        self.proc = self.gateway.spawn(argv, self.log)
        await_ready(self.proc, self.log, "listening at", "mitmdump", timeout)
        text = self.log.read_text(errors="replace")
        if "error in script" in text:  # mitmdump listens a moment, then exits without it
            terminate(self.proc, 5.0)
            lines = text[text.index("error in script"):].splitlines()
            cause = [x for x in lines if re.match(r"\w+(Error|Exception)\b", x)] or lines[:1]
            raise CaptureError(f"mitmdump could not load its addon {self.addon.name}: "
                               f"{cause[-1].strip()} (see {self.log.name})")
        if not self.ca_cert.exists():
            raise CaptureError(f"mitmdump started but wrote no CA at {self.ca_cert}")

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop; True when mitmdump ended by itself after SIGTERM (flow file complete)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc is not None
        return terminate(self.proc, timeout)
