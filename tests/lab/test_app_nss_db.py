"""An app that keeps its own NSS database in its profile (Firefox does, and ignores
``~/.pki/nssdb``): the app profile's ``nss_db`` names that folder of the home, and the guest's
CAs go there too — into the database the starting profile brought, or a new one. Shown with
``certutil`` and a real NSS client (``tstclnt``) in the guest's sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from testbed.lab import sandbox, truststores

from . import tlskit

TOOLS = ("bwrap", "setpriv", "certutil", "tstclnt")
pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS) or os.geteuid() != 0,
    reason=f"needs root and {', '.join(TOOLS)} (make system installs them)")
HERE = Path(__file__).resolve().parent
FOLDERS = [".mozilla/firefox/testbed", "profile"]


def _nicknames(db: Path) -> dict[str, str]:
    out = subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True,
                         text=True, check=True).stdout
    return {line[:60].strip(): line.split()[-1] for line in out.splitlines()
            if line.startswith(truststores.NICKNAME)}


def _tstclnt(fs: sandbox.GuestFs, folder: str, port: int) -> subprocess.CompletedProcess[str]:
    argv = ["sh", "-c", f'exec tstclnt -h 127.0.0.1 -p {port} -a {tlskit.NAME} '
                        f'-d "sql:$HOME/{folder}" -Q']
    return subprocess.run(sandbox.bwrap_argv(fs, "none", [HERE], argv), capture_output=True,
                          text=True, env=sandbox.guest_env(fs, {}), timeout=60)


@pytest.mark.parametrize("with_db", [False, True], ids=["new database", "the profile's"])
@pytest.mark.parametrize("folder", FOLDERS)
def test_the_apps_own_database_trusts_the_ca(tmp_path, pki, folder, with_db):
    fs = sandbox.prepare(tmp_path / "guests" / "v", sandbox.guest_uid("00ab", 1), pki["ca"],
                         tlskit.starting_profile(tmp_path, folder, with_db), nss_db=folder)
    db = fs.home / folder
    assert _nicknames(db) == {truststores.NICKNAME: "C,,"}
    assert (db / "user.js").read_text() == 'user_pref("a.b", true);\n'
    assert {p.stat().st_uid for p in [db, *db.iterdir()]} == {fs.uid}
    record = json.loads(fs.trust_record.read_text())
    assert {"store": "nss", "installed": True, "where": f"~/{folder}"} in record["stores"]
    assert {"store": "nss", "installed": True, "where": "~/.pki/nssdb"} in record["stores"]
    with tlskit.tls_server(pki["cert"], pki["key"]) as port:
        done = _tstclnt(fs, folder, port)
    assert done.returncode == 0, done.stderr[-800:]


@pytest.mark.parametrize("folder", FOLDERS)
def test_without_nss_db_the_apps_folder_is_left_alone_and_refuses(tmp_path, pki, folder):
    """The difference that shows which store an app reads: the same profile, no ``nss_db``."""
    fs = sandbox.prepare(tmp_path / "guests" / "v", sandbox.guest_uid("00ab", 2), pki["ca"],
                         tlskit.starting_profile(tmp_path, folder, True))
    assert _nicknames(fs.home / folder) == {}
    with tlskit.tls_server(pki["cert"], pki["key"]) as port:
        done = _tstclnt(fs, folder, port)
    assert done.returncode != 0


def test_the_usual_database_named_again_is_filled_once(tmp_path, pki):
    fs = sandbox.prepare(tmp_path / "g", sandbox.guest_uid("00ab", 3), pki["ca"],
                         nss_db=truststores.NSS_DB)
    stores = json.loads(fs.trust_record.read_text())["stores"]
    assert [s["where"] for s in stores if s["store"] == "nss"] == ["~/.pki/nssdb"]
