"""A run's trust stores made once and shared by its guests (``testbed.lab.trusttemplates``): a
guest made from them holds what a guest made on its own holds — the same record, the same CAs
with the same trust in its NSS databases and Java's store, the same system bundle and hashed
names — each guest with databases of its own and /etc/ssl read-only; and certutil and keytool
ran once for the run, not once per guest. Real tools, real bubblewrap sandboxes. (The real
clients of test_truststores run against both kinds of guest: its ``guest`` fixture.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from testbed.lab import sandbox, truststores
from testbed.lab.trusttemplates import TrustTemplates

from . import tlskit

TOOLS = ("bwrap", "setpriv", "certutil", "openssl")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS) or os.geteuid() != 0,
    reason=f"needs root and {', '.join(TOOLS)} (make system installs them)")
HAS_JAVA = shutil.which("keytool") is not None and truststores.Path(
    "/etc/ssl/certs/java/cacerts").is_file()
APP_DB = ".mozilla/firefox/testbed"


def _marker(folder: Path) -> Path:
    ca = folder / "marker.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMARKER\n-----END CERTIFICATE-----\n")
    return ca


#: name -> (the CAs, the app's own database, whether the starting profile brings one)
CASES = {
    "the gateway's CA": (["ca"], None, None),
    "the gateway's and the lab's CA": (["ca", "ca2"], None, None),
    "a CA that is no certificate": (["marker"], None, None),
    "no CA": ([], None, None),
    "an app database made new": (["ca"], APP_DB, False),
    "an app database the profile brings": (["ca"], APP_DB, True),
}


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory, pki) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("cas")
    ca2, _ = tlskit.make_ca(folder / "second", "a second lab CA")
    return {"ca": pki["ca"], "ca2": ca2, "marker": _marker(folder)}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory, cas):  # type: ignore[no-untyped-def]
    """case -> a guest made on its own and one made from the run's stores (made once)."""
    made: dict[str, tuple[sandbox.GuestFs, sandbox.GuestFs, list[Path]]] = {}

    def pair(case: str) -> tuple[sandbox.GuestFs, sandbox.GuestFs, list[Path]]:
        if case not in made:
            made[case] = _pair(tmp_path_factory.mktemp("pair"), cas, case)
        return made[case]

    return pair


def _pair(tmp: Path, cas: dict[str, Path], case: str
          ) -> tuple[sandbox.GuestFs, sandbox.GuestFs, list[Path]]:
    names, nss_db, with_db = CASES[case]
    trust = [cas[n] for n in names]
    templates = TrustTemplates(tmp / "run" / "lab" / "trust")
    out = []
    for i, shared in enumerate((None, templates)):
        start = (tlskit.starting_profile(tmp / f"s{i}", APP_DB, with_db)
                 if with_db is not None else None)
        out.append(sandbox.prepare(tmp / "run" / "guests" / f"v{i}",
                                   sandbox.guest_uid("00cc", i), trust, start, nss_db, shared))
    templates.close()
    return out[0], out[1], trust


def _nss(db: Path) -> list[str]:
    if not (db / "cert9.db").exists():
        return []
    out = subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True,
                         text=True, check=True).stdout
    return sorted(" ".join(line.split()) for line in out.splitlines()[4:] if line.strip())


def _java(ssl: Path) -> list[str]:
    store = ssl / truststores.JAVA_STORE
    out = subprocess.run(["keytool", "-list", "-keystore", str(store), "-storepass",
                          truststores.JAVA_PASSWORD], capture_output=True, text=True).stdout
    return sorted(line.split(",")[0] for line in out.splitlines() if "testbed" in line)


def _certs(ssl: Path) -> dict[str, str]:
    certs = ssl / "certs"
    return {p.name: (os.readlink(p) if p.is_symlink() else p.read_text(errors="replace"))
            for p in sorted(certs.iterdir()) if p.name != "java"}


@pytest.mark.parametrize("case", CASES)
def test_a_guest_from_the_runs_stores_gets_the_same_record(pairs, case):
    own, shared, _ = pairs(case)
    assert json.loads(shared.trust_record.read_text()) == \
        json.loads(own.trust_record.read_text()), (
        f"{case}: the record of a guest made from the run's stores differs from one made alone")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("folder", [truststores.NSS_DB, APP_DB])
def test_its_nss_databases_hold_the_same_cas_with_the_same_trust(pairs, case, folder):
    own, shared, _ = pairs(case)
    assert _nss(shared.home / folder) == _nss(own.home / folder)


@pytest.mark.parametrize("case", CASES)
def test_its_system_bundle_and_hashed_names_are_the_same(pairs, case):
    own, shared, _ = pairs(case)
    assert _certs(shared.etc / "ssl") == _certs(own.etc / "ssl")
    assert not (shared.etc / "ssl" / "private").exists()  # the host's keys stay on the host


@pytest.mark.skipif(not HAS_JAVA, reason="no Java here: the store is skipped (test_truststores)")
@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][0]])
def test_its_java_store_holds_the_same_cas(pairs, case):
    own, shared, _ = pairs(case)
    assert _java(shared.etc / "ssl") == _java(own.etc / "ssl")


def test_each_guest_has_its_own_databases_owned_by_it_and_a_read_only_etc_ssl(tmp_path, cas):
    templates = TrustTemplates(tmp_path / "run" / "lab" / "trust")
    guests = [sandbox.prepare(tmp_path / "run" / "guests" / f"v{i}",
                              sandbox.guest_uid("00cd", i), [cas["ca"]], templates=templates)
              for i in range(2)]
    templates.close()
    a, b = (g.home / truststores.NSS_DB for g in guests)
    assert {(p.stat().st_ino, p.stat().st_dev) for p in a.iterdir()}.isdisjoint(
        {(p.stat().st_ino, p.stat().st_dev) for p in b.iterdir()})
    for g in guests:
        db = g.home / truststores.NSS_DB
        assert {p.stat().st_uid for p in [db.parent, db, *db.iterdir()]} == {g.uid}
        assert (g.etc / "ssl").resolve().is_relative_to(tmp_path / "run" / "lab" / "trust")
        done = subprocess.run(sandbox.bwrap_argv(g, "none", [], ["sh", "-c",
                                                                 "touch /etc/ssl/certs/x"]),
                              env=sandbox.guest_env(g, {}), capture_output=True, text=True,
                              timeout=60)
        assert done.returncode != 0, "a guest could write the /etc/ssl the run's guests share"
    assert not (tmp_path / "run" / "lab" / "trust" / "0" / "ssl" / "certs" / "x").exists()


def _counting(bin_dir: Path, log: Path) -> None:
    """``certutil``, ``keytool`` and ``openssl`` that note each call, then run the real one."""
    bin_dir.mkdir()
    for tool in ("certutil", "keytool", "openssl"):
        real = shutil.which(tool)
        if real:
            (bin_dir / tool).write_text(f'#!/bin/sh\necho {tool} >> "{log}"\nexec {real} "$@"\n')
            (bin_dir / tool).chmod(0o755)


def _calls(log: Path) -> dict[str, int]:
    names = log.read_text().split() if log.exists() else []
    return {t: names.count(t) for t in sorted(set(names))}


@pytest.mark.parametrize("guests", [2, 4])
def test_the_tools_run_once_per_run_however_many_guests(tmp_path, cas, monkeypatch, guests):
    log = tmp_path / "calls"
    _counting(tmp_path / "bin", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    sandbox.prepare(tmp_path / "alone", 4242, [cas["ca"]])
    one_guest = _calls(log)
    log.unlink()
    templates = TrustTemplates(tmp_path / "run" / "lab" / "trust")
    with ThreadPoolExecutor(max_workers=guests) as pool:  # as the lab starts them: at once
        list(pool.map(lambda i: sandbox.prepare(
            tmp_path / "run" / "guests" / f"v{i}", sandbox.guest_uid("00ce", i), [cas["ca"]],
            templates=templates), range(guests)))
    templates.close()
    assert one_guest.get("certutil", 0) >= 2  # made, then the CA added
    assert _calls(log) == one_guest, (
        f"{guests} guests from the run's stores ran {_calls(log)}; one guest alone runs "
        f"{one_guest}")
