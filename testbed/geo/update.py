"""``testbed geo update``: download current free GeoIP databases, verified.

- DB-IP City Lite: ``{dbip_base}/dbip-city-lite-YYYY-MM.mmdb.gz`` for the current month
  (UTC), falling back to the previous month when the current one is not published yet
  (HTTP 404). DB-IP publishes no checksum: the gzip CRC, the database type and a sanity
  lookup are what is checked.
- With a MaxMind license key: GeoLite2-City and GeoLite2-ASN from
  ``{maxmind_base}/app/geoip_download?edition_id=...&license_key=...&suffix=tar.gz``,
  checked against the published ``suffix=tar.gz.sha256``. The key is never printed: every
  URL shown has it replaced by ``REDACTED``.

Each database is decompressed into a temporary file in the destination, opened with
maxminddb, its `database_type` compared with what was asked for, 8.8.8.8/1.1.1.1 looked
up, and only then renamed over ``DEST/dbip-city-lite.mmdb``, ``DEST/GeoLite2-City.mmdb``,
``DEST/GeoLite2-ASN.mmdb``. Exit status: 0; 1 when a download or check failed; 2 for a
user mistake (bad option, unwritable destination, key refused).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import os
import re
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TextIO

import geoip2.database
import geoip2.errors
import maxminddb

from testbed._digest import file_sha256
from testbed._errors import TestbedError
from testbed.analysis.bundled import attribution_for

__all__ = [
    "DBIP_BASE",
    "MAXMIND_BASE",
    "MAXMIND_EDITIONS",
    "Written",
    "default_dest",
    "main",
    "update",
]

DBIP_BASE = "https://download.db-ip.com/free"
MAXMIND_BASE = "https://download.maxmind.com"
MAXMIND_EDITIONS = ("GeoLite2-City", "GeoLite2-ASN")
DBIP_TYPE = "DBIP-City-Lite"
SANITY_ADDRESSES = ("8.8.8.8", "1.1.1.1")
MAX_DATABASE = 2 << 30  # refuse to decompress more than 2 GiB
_CHUNK = 1 << 16

Progress = Callable[[str, int, int | None], None]


class _UserError(TestbedError):
    """A mistake the user can fix (exit 2)."""

    exit_code = 2


class _HTTPFailure(TestbedError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Written:
    """One database written into the destination."""

    path: Path
    database_type: str
    build_date: str  # ISO 8601, UTC
    sha256: str
    source: str  # the URL it came from, license key redacted
    attribution: str | None = None

    def describe(self) -> str:
        return (
            f"wrote {self.path}: {self.database_type}, built {self.build_date[:10]}, "
            f"sha256 {self.sha256}"
        )


def default_dest() -> Path:
    """``$XDG_DATA_HOME/testbed/geoip``, by default ``~/.local/share/testbed/geoip``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "testbed" / "geoip"


def _redact(url: str) -> str:
    return re.sub(r"(license_key=)[^&]*", r"\1REDACTED", url)


def _months(month: str | None, now: datetime | None = None) -> list[str]:
    if month is not None:
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
            raise _UserError(f"--month {month!r}: expected YYYY-MM")
        return [month]
    now = now or datetime.now(UTC)
    prev = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return [f"{now.year:04d}-{now.month:02d}", f"{prev[0]:04d}-{prev[1]:02d}"]


def _check_base(option: str, url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _UserError(f"{option} {url!r}: expected an http(s) URL")
    return url.rstrip("/")


@contextmanager
def _temp(dest: Path, name: str) -> Iterator[Path]:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=dest)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _download(url: str, out: Path, name: str, progress: Progress, timeout: float) -> str:
    """Stream `url` into `out`; return the sha256 of what was written."""
    shown = _redact(url)
    req = urllib.request.Request(url, headers={"User-Agent": "testbed-geo-update"})
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(out, "wb") as f:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            progress(name, 0, total)
            while chunk := resp.read(_CHUNK):
                f.write(chunk)
                h.update(chunk)
                done += len(chunk)
                progress(name, done, total)
            if total is not None and done != total:
                raise TestbedError(f"{name}: download cut short ({done} of {total} bytes)")
    except urllib.error.HTTPError as e:
        raise _HTTPFailure(f"{name}: HTTP {e.code} {e.reason} from {shown}", e.code) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise TestbedError(f"{name}: download from {shown} failed: {reason}") from None
    return h.hexdigest()


def _copy_limited(src: BinaryIO, dst: BinaryIO, name: str) -> None:
    n = 0
    while chunk := src.read(1 << 20):
        n += len(chunk)
        if n > MAX_DATABASE:
            raise TestbedError(f"{name}: decompresses to more than {MAX_DATABASE} bytes")
        dst.write(chunk)


def _gunzip(src: Path, dst: Path, name: str) -> None:
    try:
        with gzip.open(src, "rb") as g, open(dst, "wb") as f:
            _copy_limited(g, f, name)  # type: ignore[arg-type]
    except (OSError, EOFError, zlib.error) as e:
        raise TestbedError(f"{name}: corrupt gzip file: {e}") from None


def _untar(src: Path, member_name: str, dst: Path, name: str) -> None:
    try:
        with tarfile.open(src, "r:gz") as tar:
            member = next(
                (
                    m
                    for m in tar
                    if m.isfile()
                    and (m.name == member_name or m.name.endswith("/" + member_name))
                ),
                None,
            )
            if member is None:
                raise TestbedError(f"{name}: archive holds no {member_name}")
            f_in = tar.extractfile(member)
            if f_in is None:
                raise TestbedError(f"{name}: cannot read {member.name} from the archive")
            with f_in, open(dst, "wb") as f_out:
                _copy_limited(f_in, f_out, name)  # type: ignore[arg-type]
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise TestbedError(f"{name}: corrupt tar.gz archive: {e}") from None


def _verify(path: Path, expected_type: str, name: str) -> tuple[str, int]:
    """Open with maxminddb, check the type, look up a well-known address."""
    try:
        with maxminddb.open_database(str(path)) as raw:
            meta = raw.metadata()
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as e:
        raise TestbedError(f"{name}: not a MaxMind database: {e}") from None
    if meta.database_type != expected_type:
        raise TestbedError(
            f"{name}: database type is {meta.database_type!r}, expected {expected_type!r}"
        )
    asn = "ASN" in expected_type
    try:
        with geoip2.database.Reader(str(path)) as reader:
            for address in SANITY_ADDRESSES:
                try:
                    if asn:
                        if reader.asn(address).autonomous_system_number:
                            break
                    elif reader.city(address).country.iso_code:
                        break
                except geoip2.errors.AddressNotFoundError:
                    continue
            else:
                what = "an AS number" if asn else "a country"
                raise TestbedError(
                    f"{name}: sanity lookup failed: none of {', '.join(SANITY_ADDRESSES)} "
                    f"has {what}"
                )
    except (geoip2.errors.GeoIP2Error, maxminddb.InvalidDatabaseError, ValueError) as e:
        raise TestbedError(f"{name}: lookup in the downloaded database failed: {e}") from None
    return meta.database_type, int(meta.build_epoch)


def _install(tmp: Path, target: Path, expected_type: str, name: str, source: str) -> Written:
    dbtype, epoch = _verify(tmp, expected_type, name)
    digest = file_sha256(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.chmod(0o644)
    os.replace(tmp, target)
    built = datetime.fromtimestamp(epoch, UTC).isoformat()
    return Written(target, dbtype, built, digest, source, attribution_for(dbtype, epoch))


def _update_dbip(
    dest: Path, base: str, month: str | None, progress: Progress, note: Callable[[str], None],
    timeout: float,
) -> Written:
    months = _months(month)
    with _temp(dest, "dbip.gz") as gz, _temp(dest, "dbip.mmdb") as mmdb:
        for i, m in enumerate(months):
            name = f"dbip-city-lite-{m}.mmdb.gz"
            url = f"{base}/{name}"
            try:
                _download(url, gz, name, progress, timeout)
                break
            except _HTTPFailure as e:
                if e.status == 404 and i + 1 < len(months):
                    note(f"{name} is not published yet (HTTP 404); trying the previous month")
                    continue
                raise
        _gunzip(gz, mmdb, name)
        return _install(mmdb, dest / "dbip-city-lite.mmdb", DBIP_TYPE, name, _redact(url))


def _maxmind_url(base: str, edition: str, key: str, suffix: str) -> str:
    query = urllib.parse.urlencode(
        {"edition_id": edition, "license_key": key, "suffix": suffix}
    )
    return f"{base}/app/geoip_download?{query}"


def _update_maxmind(
    dest: Path, base: str, edition: str, key: str, progress: Progress, timeout: float
) -> Written:
    name = f"{edition}.tar.gz"
    url = _maxmind_url(base, edition, key, "tar.gz")
    with _temp(dest, f"{edition}.sha256") as sums, _temp(dest, name) as tgz, \
            _temp(dest, f"{edition}.mmdb") as mmdb:
        try:
            _download(_maxmind_url(base, edition, key, "tar.gz.sha256"), sums,
                      f"{name}.sha256", progress, timeout)
            actual = _download(url, tgz, name, progress, timeout)
        except _HTTPFailure as e:
            if e.status in (401, 403):
                raise _UserError(
                    f"{name}: MaxMind refused the license key (HTTP {e.status}); check "
                    "--license-key / MAXMIND_LICENSE_KEY"
                ) from None
            raise
        text = sums.read_text(errors="replace").strip()
        match = re.match(r"([0-9a-fA-F]{64})\b", text)
        if match is None:
            raise TestbedError(f"{name}: the published .sha256 file holds no checksum")
        if match.group(1).lower() != actual:
            raise TestbedError(
                f"{name}: sha256 mismatch: published {match.group(1).lower()}, "
                f"downloaded {actual}"
            )
        _untar(tgz, f"{edition}.mmdb", mmdb, name)
        return _install(mmdb, dest / f"{edition}.mmdb", edition, name, _redact(url))


def update(
    dest: Path,
    *,
    license_key: str | None = None,
    dbip_base: str = DBIP_BASE,
    maxmind_base: str = MAXMIND_BASE,
    month: str | None = None,
    progress: Progress | None = None,
    note: Callable[[str], None] | None = None,
    timeout: float = 60.0,
) -> tuple[list[Written], list[TestbedError]]:
    """Download, verify and atomically install the databases into `dest`.

    Returns (written, failures): one failure per source that could not be updated
    (the others still are). Raises `TestbedError` with exit_code 2 for a user mistake
    found before any download (bad `month` or base URL, destination not writable).
    """
    progress = progress or (lambda name, done, total: None)
    note = note or (lambda message: None)
    dbip_base = _check_base("--dbip-base", dbip_base)
    maxmind_base = _check_base("--maxmind-base", maxmind_base)
    _months(month)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with _temp(dest, "probe"):
            pass
    except OSError as e:
        raise _UserError(f"--dest {dest}: cannot write there: {e.strerror or e}") from None
    written: list[Written] = []
    failures: list[TestbedError] = []
    jobs: list[Callable[[], Written]] = [
        lambda: _update_dbip(dest, dbip_base, month, progress, note, timeout)
    ]
    if license_key:
        for edition in MAXMIND_EDITIONS:
            jobs.append(
                lambda e=edition: _update_maxmind(  # type: ignore[misc]
                    dest, maxmind_base, e, license_key, progress, timeout
                )
            )
    else:
        note(
            "GeoLite2-City/GeoLite2-ASN skipped: no MaxMind license key (use --license-key "
            "or set MAXMIND_LICENSE_KEY; a free account gives one)"
        )
    for job in jobs:
        try:
            written.append(job())
        except TestbedError as e:
            failures.append(e)
    return written, failures


class _ProgressPrinter:
    """Bytes downloaded: a live line on a terminal, one line per file otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def __call__(self, name: str, done: int, total: int | None) -> None:
        finished = total is not None and done >= total
        of = f" of {total:,}" if total is not None else ""
        if self.tty:
            now = time.monotonic()
            if finished or done == 0 or now - self.last > 0.2:
                self.last = now
                end = "\n" if finished else ""
                print(f"\r{name}: {done:,}{of} bytes", end=end, file=self.stream, flush=True)
        elif done == 0:
            print(f"downloading {name}{of and f' ({total:,} bytes)'}", file=self.stream)
        elif finished:
            print(f"{name}: {done:,} bytes", file=self.stream)


def main(
    dest: Path | None = None,
    license_key: str | None = None,
    dbip_base: str = DBIP_BASE,
    maxmind_base: str = MAXMIND_BASE,
    month: str | None = None,
    timeout: float = 60.0,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the update and print what was written; return the exit status."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    key = license_key or os.environ.get("MAXMIND_LICENSE_KEY") or None
    dest = dest if dest is not None else default_dest()
    printer = _ProgressPrinter(err)

    def note(message: str) -> None:
        print(f"testbed: {message}", file=err)

    try:
        written, failures = update(
            dest, license_key=key, dbip_base=dbip_base, maxmind_base=maxmind_base,
            month=month, progress=printer, note=note, timeout=timeout,
        )
    except TestbedError as e:
        print(f"testbed: geo update: {e}", file=err)
        return e.exit_code
    for w in written:
        print(w.describe(), file=out)
    for a in sorted({w.attribution for w in written if w.attribution}):
        print(f"  {a}", file=out)
    for failure in failures:
        print(f"testbed: geo update: {failure}", file=err)
    return max((f.exit_code for f in failures), default=0)


def run(args: argparse.Namespace) -> int:
    """CLI glue for the ``geo update`` arguments."""
    return main(args.dest, args.license_key, args.dbip_base, args.maxmind_base, args.month,
                args.timeout)
