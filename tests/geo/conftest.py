"""Fixtures for the geo commands: small test databases and a local download server."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from testbed.analysis.geo import MapEntry, write_mmdb

EPOCH = 1_714_521_600  # 2024-05-01T00:00:00Z

CITY_MAP = [
    MapEntry("8.8.8.0/24", "US", "United States", "Mountain View"),
    MapEntry("1.1.1.0/24", "AU", "Australia", "Sydney"),
    MapEntry("2001:4860::/32", "US", "United States"),
]
ASN_MAP = [
    MapEntry("8.8.8.0/24", "", "", asn=15169, organization="GOOGLE"),
    MapEntry("1.1.1.0/24", "", "", asn=13335, organization="CLOUDFLARENET"),
]


def mmdb_bytes(tmp: Path, name: str, database_type: str, entries: list[MapEntry]) -> bytes:
    return write_mmdb(tmp / name, entries, database_type=database_type,
                      build_epoch=EPOCH).read_bytes()


def tar_gz(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in ((member.rsplit("/", 1)[0] + "/COPYRIGHT.txt", b"(c)"),
                              (member, data)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def sha256_line(data: bytes, name: str) -> bytes:
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n".encode()


@dataclass
class Server:
    """A download server on 127.0.0.1: `files` maps a path to bytes (404 otherwise);
    MaxMind downloads (`/app/geoip_download?...`) come from `editions` when the
    license key equals `key` (401 otherwise)."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    editions: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (edition, suffix)
    key: str = "s3cr3t-KEY"
    requests: list[str] = field(default_factory=list)

    def add_dbip(self, month: str, mmdb: bytes) -> None:
        self.files[f"/dbip-city-lite-{month}.mmdb.gz"] = gzip.compress(mmdb)

    def add_maxmind(self, edition: str, mmdb: bytes, *, checksum: bytes | None = None) -> None:
        archive = tar_gz(f"{edition}_20240501/{edition}.mmdb", mmdb)
        self.editions[(edition, "tar.gz")] = archive
        self.editions[(edition, "tar.gz.sha256")] = checksum or sha256_line(
            archive, f"{edition}_20240501.tar.gz")

    def answer(self, path: str) -> tuple[int, bytes]:
        self.requests.append(path)
        parts = urllib.parse.urlsplit(path)
        if parts.path == "/app/geoip_download":
            q = dict(urllib.parse.parse_qsl(parts.query))
            if q.get("license_key") != self.key:
                return 401, b"Invalid license key\n"
            body = self.editions.get((q.get("edition_id", ""), q.get("suffix", "")))
            return (200, body) if body is not None else (404, b"not found\n")
        body = self.files.get(parts.path)
        return (200, body) if body is not None else (404, b"not found\n")


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = state.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
