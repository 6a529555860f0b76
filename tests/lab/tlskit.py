"""Test helpers: a CA and a server certificate made with openssl, an openssl TLS server on
loopback that presents it, and a starting profile holding an app's NSS folder."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

NAME = "lab.example"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, cn: str = "testbed test CA") -> tuple[Path, Path]:
    """A CA certificate and its key in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, key = folder / "ca.pem", folder / "ca.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
             str(ca), "-subj", f"/CN={cn}", "-days", "2",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return ca, key


def make_server_cert(folder: Path, ca: Path, ca_key: Path) -> tuple[Path, Path]:
    """A certificate for ``NAME`` (and 127.0.0.1) signed by ``ca``, and its key."""
    cert, key, csr, ext = (folder / n for n in ("srv.pem", "srv.key", "srv.csr", "srv.ext"))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", f"/CN={NAME}")
    ext.write_text(f"subjectAltName=DNS:{NAME},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return cert, key


@contextlib.contextmanager
def tls_server(cert: Path, key: Path) -> Iterator[int]:
    """An openssl TLS server on 127.0.0.1 (answers HTTP with a status page); yields its port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert",
                             str(cert), "-key", str(key), "-www", "-quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as c:
                if c.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the openssl test server did not start")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def starting_profile(tmp: Path, folder: str, with_db: bool) -> Path:
    """A starting profile holding the app's folder with its settings (and, ``with_db``, an
    empty NSS database made by certutil)."""
    start = tmp / "start"
    (start / folder).mkdir(parents=True)
    (start / folder / "user.js").write_text('user_pref("a.b", true);\n')
    if with_db:
        subprocess.run(["certutil", "-N", "-d", f"sql:{start / folder}", "--empty-password"],
                       check=True, capture_output=True)
    return start
