"""mitmdump in transparent mode on the gateway: decrypted TCP flows, written with ``-w``.

Runs in the gateway namespace, which holds the REDIRECT rule (mitmproxy reads the original
destination from conntrack). Upstream servers are the lab's own, so their certificates are not
checked (``ssl_insecure``); the guests trust mitmproxy's CA, which lives in a ``confdir`` kept
between runs. Stopped with SIGTERM so the flow file is complete.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from testbed._errors import CaptureError
from testbed.provider.abstracts import Gateway
from testbed.run.files import TLS

CA_FILE = "mitmproxy-ca-cert.pem"


def mitmdump_path() -> str:
    return str(Path(sys.executable).with_name("mitmdump"))


class Mitmdump:
    def __init__(self, gateway: Gateway, port: int, flows: Path, confdir: Path,
                 log: Path) -> None:
        self.gateway, self.port, self.flows, self.confdir, self.log = (
            gateway, port, flows, confdir, log)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def tls_log(self) -> Path:
        """SNI, TLS failures and pinned servers, as JSON lines (see ``mitm_addon``)."""
        return self.flows.with_name(Path(TLS).name)

    @property
    def ca_cert(self) -> Path:
        return self.confdir / CA_FILE

    def start(self, timeout: float = 30.0) -> None:
        self.confdir.mkdir(parents=True, exist_ok=True)
        argv = [mitmdump_path(), "--mode", "transparent", "--listen-port", str(self.port),
                "--set", f"confdir={self.confdir}", "--set", "ssl_insecure=true",
                "--set", "flow_detail=0", "-w", str(self.flows),
                "-s", str(Path(__file__).with_name("mitm_addon.py")),
                "--set", f"testbed_tls_log={self.tls_log}"]
        self.proc = self.gateway.spawn(argv, self.log)
        deadline = time.monotonic() + timeout
        while "listening at" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None:
                raise CaptureError(f"mitmdump exited ({self.proc.returncode}): "
                                   f"{self.log.read_text(errors='replace').strip()[-500:]}")
            if time.monotonic() > deadline:
                raise CaptureError(f"mitmdump did not start within {timeout:g} s")
            time.sleep(0.1)
        if not self.ca_cert.exists():
            raise CaptureError(f"mitmdump started but wrote no CA at {self.ca_cert}")

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop; True when mitmdump ended by itself after SIGTERM (flow file complete)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return False
