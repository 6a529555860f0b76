"""`testbed geo update` against a download server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import geoip2.database
import pytest

from testbed.cli import main
from testbed.geo import update

from .conftest import ASN_MAP, CITY_MAP, Server, mmdb_bytes

ROOT = Path(__file__).resolve().parents[2]
THIS_MONTH, LAST_MONTH = update._months(None)


@pytest.fixture
def dbs(tmp_path: Path) -> dict[str, bytes]:
    src = tmp_path / "src"
    return {
        "dbip": mmdb_bytes(src, "dbip.mmdb", "DBIP-City-Lite", CITY_MAP),
        "city": mmdb_bytes(src, "city.mmdb", "GeoLite2-City", CITY_MAP),
        "asn": mmdb_bytes(src, "asn.mmdb", "GeoLite2-ASN", ASN_MAP),
        "country": mmdb_bytes(src, "country.mmdb", "GeoLite2-Country", CITY_MAP),
    }


def run(server: Server, dest: Path, *extra: str) -> int:
    return main(["geo", "update", "--dest", str(dest), "--dbip-base", server.url,
                 "--maxmind-base", server.url, "--timeout", "10", *extra])


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name.startswith("."))


def test_everything_with_a_license_key(
    server: Server, dbs: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAXMIND_LICENSE_KEY", server.key)
    server.add_dbip(THIS_MONTH, dbs["dbip"])
    server.add_maxmind("GeoLite2-City", dbs["city"])
    server.add_maxmind("GeoLite2-ASN", dbs["asn"])
    dest = tmp_path / "geoip"
    assert run(server, dest) == 0
    out, err = capsys.readouterr()
    assert sorted(p.name for p in dest.iterdir()) == [
        "GeoLite2-ASN.mmdb", "GeoLite2-City.mmdb", "dbip-city-lite.mmdb"]
    for name, key in (("dbip-city-lite.mmdb", "dbip"), ("GeoLite2-City.mmdb", "city"),
                      ("GeoLite2-ASN.mmdb", "asn")):
        data = (dest / name).read_bytes()
        assert data == dbs[key]
        line = next(x for x in out.splitlines() if x.startswith(f"wrote {dest / name}:"))
        assert "built 2024-05-01" in line and hashlib.sha256(data).hexdigest() in line
    assert "IP Geolocation by DB-IP" in out and "GeoLite2 data created by MaxMind" in out
    assert f"dbip-city-lite-{THIS_MONTH}.mmdb.gz" in err and "bytes" in err  # progress
    assert server.key not in out + err
    with geoip2.database.Reader(str(dest / "GeoLite2-ASN.mmdb")) as r:
        assert r.asn("8.8.8.8").autonomous_system_number == 15169


def test_without_key_only_dbip_and_fallback_to_last_month(
    server: Server, dbs: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MAXMIND_LICENSE_KEY", raising=False)
    server.add_dbip(LAST_MONTH, dbs["dbip"])  # this month's is not out yet: 404
    dest = tmp_path / "geoip"
    assert run(server, dest) == 0
    out, err = capsys.readouterr()
    assert [p.name for p in dest.iterdir()] == ["dbip-city-lite.mmdb"]
    assert f"dbip-city-lite-{THIS_MONTH}.mmdb.gz is not published yet" in err
    assert "no MaxMind license key" in err
    assert not any("geoip_download" in r for r in server.requests)
    assert server.requests == [f"/dbip-city-lite-{THIS_MONTH}.mmdb.gz",
                               f"/dbip-city-lite-{LAST_MONTH}.mmdb.gz"]
    assert f"wrote {dest / 'dbip-city-lite.mmdb'}: DBIP-City-Lite" in out


def test_checksum_mismatch_keeps_nothing(
    server: Server, dbs: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    server.add_dbip(THIS_MONTH, dbs["dbip"])
    server.add_maxmind("GeoLite2-City", dbs["city"], checksum=b"0" * 64 + b"  x.tar.gz\n")
    server.add_maxmind("GeoLite2-ASN", dbs["asn"])
    dest = tmp_path / "geoip"
    assert run(server, dest, "--license-key", server.key) == 1
    out, err = capsys.readouterr()
    assert "GeoLite2-City.tar.gz: sha256 mismatch" in err
    assert sorted(p.name for p in dest.iterdir()) == ["GeoLite2-ASN.mmdb", "dbip-city-lite.mmdb"]
    assert server.key not in out + err
    assert "Traceback" not in err


def test_corrupt_gzip_leaves_the_old_database(
    server: Server, dbs: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    dest = tmp_path / "geoip"
    dest.mkdir()
    (dest / "dbip-city-lite.mmdb").write_bytes(b"old")
    good = server.files
    server.add_dbip(THIS_MONTH, dbs["dbip"])
    path = f"/dbip-city-lite-{THIS_MONTH}.mmdb.gz"
    good[path] = good[path][: len(good[path]) // 2]  # truncated gzip
    assert run(server, dest) == 1
    err = capsys.readouterr().err
    assert "corrupt gzip" in err
    assert (dest / "dbip-city-lite.mmdb").read_bytes() == b"old"
    assert leftovers(dest) == []
    server.files[path] = b"\x1f\x8b\x08\x00garbage" * 10  # gzip magic, broken stream
    assert run(server, dest) == 1
    assert "corrupt gzip" in capsys.readouterr().err


def test_wrong_database_type(
    server: Server, dbs: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    server.add_dbip(THIS_MONTH, dbs["country"])
    server.add_maxmind("GeoLite2-City", dbs["dbip"])
    server.add_maxmind("GeoLite2-ASN", dbs["asn"])
    dest = tmp_path / "geoip"
    assert run(server, dest, "--license-key", server.key) == 1
    err = capsys.readouterr().err
    assert "database type is 'GeoLite2-Country', expected 'DBIP-City-Lite'" in err
    assert "database type is 'DBIP-City-Lite', expected 'GeoLite2-City'" in err
    assert [p.name for p in dest.iterdir()] == ["GeoLite2-ASN.mmdb"]


def test_sanity_lookup_and_not_a_database(
    server: Server, dbs: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from testbed.analysis.geo import MapEntry

    empty = mmdb_bytes(tmp_path, "e.mmdb", "DBIP-City-Lite",
                       [MapEntry("192.0.2.0/24", "FR", "France")])
    server.add_dbip(THIS_MONTH, empty)
    assert run(server, tmp_path / "d1") == 1
    assert "sanity lookup failed" in capsys.readouterr().err
    server.add_dbip(THIS_MONTH, b"this is no database" * 100)
    assert run(server, tmp_path / "d2") == 1
    assert "not a MaxMind database" in capsys.readouterr().err


def test_both_months_missing_is_a_download_failure(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(server, tmp_path / "geoip") == 1
    err = capsys.readouterr().err
    assert f"dbip-city-lite-{LAST_MONTH}.mmdb.gz: HTTP 404" in err


def test_refused_license_key_is_a_user_mistake(
    server: Server, dbs: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    server.add_dbip(THIS_MONTH, dbs["dbip"])
    assert run(server, tmp_path / "geoip", "--license-key", "wrong-KEY-123") == 2
    out, err = capsys.readouterr()
    assert "MaxMind refused the license key (HTTP 401)" in err
    assert "wrong-KEY-123" not in out + err
    assert (tmp_path / "geoip" / "dbip-city-lite.mmdb").exists()


def test_user_mistakes_exit_2(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(server, tmp_path / "g", "--month", "2024-13") == 2
    assert "expected YYYY-MM" in capsys.readouterr().err
    afile = tmp_path / "file"
    afile.write_text("x")
    assert run(server, afile) == 2
    assert "cannot write there" in capsys.readouterr().err
    assert main(["geo", "update", "--dest", str(tmp_path / "g"), "--dbip-base", "ftp://x"]) == 2
    assert server.requests == []


def test_month_option_and_no_traceback_in_a_subprocess(
    server: Server, dbs: dict[str, bytes], tmp_path: Path,
) -> None:
    server.add_dbip("2024-05", dbs["dbip"])
    cmd = [sys.executable, "-m", "testbed", "geo", "update", "--dest", str(tmp_path / "g"),
           "--dbip-base", server.url, "--month", "2024-05"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    ok = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "wrote" in ok.stdout
    bad = subprocess.run([*cmd[:-1], "2024-04"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env=env)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("testbed: geo update: ")
