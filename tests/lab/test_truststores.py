"""The gateway's CA in every trust store a real app may read, shown with real clients: in a
guest's sandbox (bubblewrap, as the lab runs guests), GnuTLS (``gnutls-cli``), NSS
(``tstclnt`` with the guest's ``~/.pki/nssdb``; ``certutil -L``), OpenSSL (``openssl
s_client``) and Java (``keytool``) accept a server whose certificate our CA signed; the same
clients outside the sandbox (the host's stores) refuse it. A CA that is no certificate, and a
host without Java, are recorded as skipped, never silently."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from testbed.lab import sandbox, truststores
from testbed.lab.trusttemplates import TrustTemplates

from . import tlskit

TOOLS = ("bwrap", "setpriv", "certutil", "tstclnt", "gnutls-cli", "openssl")
needs_tools = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS) or os.geteuid() != 0,
    reason=f"needs root and {', '.join(TOOLS)} (make system installs them)")
HERE = Path(__file__).resolve().parent
HANDSHAKE_JAVA = HERE / "TlsHandshake.java"
HAS_JAVA = shutil.which("keytool") is not None and truststores.Path(
    "/etc/ssl/certs/java/cacerts").is_file()


@pytest.fixture(scope="module", params=["made alone", "from the run's stores"])
def guest(request, tmp_path_factory: pytest.TempPathFactory, pki) -> sandbox.GuestFs:  # type: ignore[no-untyped-def]
    """A guest with its stores made for it, or copied from the run's (as the lab does)."""
    run = tmp_path_factory.mktemp("run")
    templates = (TrustTemplates(run / "lab" / "trust") if request.param != "made alone"
                 else None)
    fs = sandbox.prepare(run / "guests" / "v", sandbox.guest_uid("00aa", 3), pki["ca"],
                         templates=templates)
    if templates is not None:
        templates.close()
    return fs


def _java_sha() -> str:
    store = Path("/etc/ssl/certs/java/cacerts")
    return hashlib.sha256(store.read_bytes()).hexdigest() if store.is_file() else ""


# -- the stores, as files -------------------------------------------------------------------
def test_the_nss_database_in_the_home_trusts_the_ca_for_servers(guest):
    out = subprocess.run(["certutil", "-L", "-d", f"sql:{guest.home / truststores.NSS_DB}"],
                         capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith(truststores.NICKNAME))
    assert line.split()[-1] == "C,,", f"the CA is in the database without server trust: {line}"


def test_the_nss_database_belongs_to_the_guest(guest):
    db = guest.home / truststores.NSS_DB
    assert {p.stat().st_uid for p in [db, *db.iterdir()]} == {guest.uid}


@pytest.mark.skipif(not HAS_JAVA, reason="no Java here: the store is skipped (own test)")
def test_the_java_store_of_the_guest_holds_the_ca_and_the_hosts_does_not(guest):
    store = guest.etc / "ssl" / truststores.JAVA_STORE
    assert not store.is_symlink()
    mine = subprocess.run(["keytool", "-list", "-keystore", str(store), "-storepass",
                           truststores.JAVA_PASSWORD, "-alias", truststores.ALIAS],
                          capture_output=True, text=True)
    assert mine.returncode == 0, mine.stdout + mine.stderr
    host = subprocess.run(["keytool", "-list", "-cacerts", "-storepass",
                           truststores.JAVA_PASSWORD, "-alias", truststores.ALIAS],
                          capture_output=True, text=True)
    assert host.returncode != 0, "the host's own Java trust store was changed"


def test_the_record_says_where_the_ca_went(guest):
    record = truststores.TrustRecord.from_json(json.loads(guest.trust_record.read_text()))
    assert record.installed("system") and record.installed("nss")
    assert record.installed("java") == HAS_JAVA
    for s in record.stores:
        assert s.installed or s.note, f"{s.store} skipped without a reason"


def test_no_host_store_is_changed(guest, pki):
    ca_line = pki["ca"].read_text().splitlines()[1]
    assert ca_line not in sandbox.SYSTEM_BUNDLE.read_text()
    assert not (Path.home() / truststores.NSS_DB / "testbed").exists()


# -- real clients in the guest's sandbox ----------------------------------------------------
def _in_guest(guest: sandbox.GuestFs, argv: list[str],
              stdin: str = "") -> subprocess.CompletedProcess[str]:
    cmd = sandbox.bwrap_argv(guest, "none", [HERE], argv)
    env = sandbox.guest_env(guest, {})
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, timeout=60)


def _on_host(argv: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env,
                          timeout=60)


def _clients(port: int) -> dict[str, list[str]]:
    name = tlskit.NAME
    return {
        "GnuTLS (gnutls-cli, the system bundle)": (
            ["gnutls-cli", "-p", str(port), "127.0.0.1", "--sni-hostname", name,
             "--verify-hostname", name]),
        "NSS (tstclnt, ~/.pki/nssdb)": (
            ["sh", "-c", f'exec tstclnt -h 127.0.0.1 -p {port} -a {name} '
                         f'-d "sql:$HOME/{truststores.NSS_DB}" -Q']),
        "OpenSSL (s_client, the system bundle)": (
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", name,
             "-verify_hostname", name, "-verify_return_error", "-brief"]),
    }


CLIENTS = list(_clients(0))


@needs_tools
@pytest.mark.skipif(not HAS_JAVA or shutil.which("java") is None, reason="no Java here")
def test_a_real_java_client_in_the_guest_accepts_a_server_our_ca_signed(guest, pki):
    with tlskit.tls_server(pki["cert"], pki["key"]) as port:
        argv = ["java", str(HANDSHAKE_JAVA), f"https://127.0.0.1:{port}/"]
        inside = _in_guest(guest, argv)
        outside = _on_host(argv)
    assert inside.returncode == 0, (
        f"Java in the guest refused a server signed by the guest's CA:\n"
        f"{(inside.stdout + inside.stderr)[-800:]}")
    assert outside.returncode != 0


@needs_tools
@pytest.mark.parametrize("client", CLIENTS)
def test_a_real_client_in_the_guest_accepts_a_server_our_ca_signed(guest, pki, client):
    with tlskit.tls_server(pki["cert"], pki["key"]) as port:
        argv = _clients(port)[client]
        inside = _in_guest(guest, argv, "GET / HTTP/1.0\r\n\r\n")
        outside = _on_host(argv, "GET / HTTP/1.0\r\n\r\n")
    assert inside.returncode == 0, (
        f"{client} in the guest refused a server signed by the guest's CA:\n"
        f"{(inside.stdout + inside.stderr)[-800:]}")
    assert outside.returncode != 0, (
        f"{client} on the host accepted the test CA: the test proves nothing")


@needs_tools
def test_nss_in_the_guest_refuses_the_server_when_its_database_lacks_the_ca(tmp_path, pki):
    plain = sandbox.prepare(tmp_path / "guests" / "w", sandbox.guest_uid("00aa", 4), None)
    with tlskit.tls_server(pki["cert"], pki["key"]) as port:
        argv = _clients(port)["NSS (tstclnt, ~/.pki/nssdb)"]
        done = _in_guest(plain, argv)
    assert done.returncode != 0


# -- what is skipped, and said -------------------------------------------------------------
def test_a_ca_that_is_no_certificate_goes_into_the_bundle_only(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMARKER\n-----END CERTIFICATE-----\n")
    fs = sandbox.prepare(tmp_path / "g", os.getuid(), ca)
    record = truststores.TrustRecord.from_json(json.loads(fs.trust_record.read_text()))
    assert record.installed("system")
    assert not record.installed("nss") and not record.installed("java")
    assert all("not a PEM certificate" in s.note for s in record.stores if not s.installed)


def test_without_a_ca_no_store_is_touched(tmp_path):
    fs = sandbox.prepare(tmp_path / "g", os.getuid(), None)
    record = json.loads(fs.trust_record.read_text())
    assert [s["installed"] for s in record["stores"]] == [False]
    assert not (fs.home / truststores.NSS_DB).exists()


@pytest.mark.parametrize("missing", ["keytool", "certutil"])
def test_a_missing_tool_is_recorded_with_its_reason(tmp_path, pki, monkeypatch, missing):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("openssl", "certutil", "keytool"):
        found = shutil.which(tool)
        if found and tool != missing:
            (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    fs = sandbox.prepare(tmp_path / "g", os.getuid(), pki["ca"])
    record = truststores.TrustRecord.from_json(json.loads(fs.trust_record.read_text()))
    store = {"keytool": "java", "certutil": "nss"}[missing]
    skipped = next(s for s in record.stores if s.store == store)
    assert not skipped.installed and missing in skipped.note


def test_the_hosts_java_store_is_never_written(tmp_path, pki):
    before = _java_sha()
    sandbox.prepare(tmp_path / "g", os.getuid(), pki["ca"])
    assert _java_sha() == before


@pytest.mark.skipif(not HAS_JAVA, reason="no Java here")
def test_the_java_store_made_again_holds_the_newer_ca(tmp_path, pki):
    fs = sandbox.prepare(tmp_path / "g", os.getuid(), pki["ca"])
    newer, _ = tlskit.make_ca(tmp_path / "newer", "a newer gateway CA")
    assert truststores.java_store(fs.etc / "ssl", [newer]).installed
    out = subprocess.run(["keytool", "-list", "-v", "-keystore",
                          str(fs.etc / "ssl" / truststores.JAVA_STORE), "-storepass",
                          truststores.JAVA_PASSWORD, "-alias", truststores.ALIAS],
                         capture_output=True, text=True, check=True).stdout
    assert "a newer gateway CA" in out
