"""What a Linux VM does with the gateway's CA before every run (vms/provision/linux/
trust-ca.sh, sent by the vagrant pool), run for real on a copy of this machine's /etc/ssl
(``ROOT``): the OS store (the file update-ca-certificates reads, the bundle, the hashed
link), the agent user's NSS database, Java's store; and the archive a VM receives holds it."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from testbed.vagrant.guestsetup import SETUP_SCRIPTS, code_archive
from tests.lab import tlskit

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "vms" / "provision" / "linux" / "trust-ca.sh"
RUN_SETUP = ROOT / "vms" / "provision" / "linux" / "run-setup.sh"
NICK = "testbed gateway CA"
needs_tools = pytest.mark.skipif(shutil.which("certutil") is None or
                                 shutil.which("openssl") is None,
                                 reason="needs certutil (libnss3-tools) and openssl")


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("vm")
    ca, _ = tlskit.make_ca(work / "pki", "testbed VM test CA")
    root = work / "root"
    shutil.copytree("/etc/ssl", root / "etc" / "ssl", symlinks=True,
                    ignore=lambda d, names: ["private"] if d == "/etc/ssl" else [])
    bundle = root / "etc" / "ssl" / "certs" / "ca-certificates.crt"
    if bundle.is_symlink():
        data = bundle.read_bytes()
        bundle.unlink()
        bundle.write_bytes(data)
    home = work / "home" / "vagrant"
    home.mkdir(parents=True)
    env = {**os.environ, "ROOT": str(root)}
    done = subprocess.run(["sh", str(SCRIPT), str(ca), str(home)], env=env,
                          capture_output=True, text=True, timeout=300)
    return {"ca": ca, "root": root, "home": home, "bundle": bundle,
            "rc": Path(str(done.returncode)), "out": Path(done.stdout + done.stderr)}


@needs_tools
def test_the_script_succeeds(vm):
    assert str(vm["rc"]) == "0", f"trust-ca.sh failed: {vm['out']}"


@needs_tools
def test_the_ca_is_where_update_ca_certificates_reads_it(vm):
    local = vm["root"] / "usr/local/share/ca-certificates/testbed-gateway.crt"
    assert local.read_text() == vm["ca"].read_text()


@needs_tools
def test_the_ca_joins_the_system_bundle_and_the_hashed_folder(vm):
    assert vm["bundle"].read_text().endswith(vm["ca"].read_text())
    digest = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(vm["ca"])],
                            capture_output=True, text=True, check=True).stdout.strip()
    link = vm["root"] / "etc/ssl/certs" / f"{digest}.0"
    assert os.readlink(link) == "/usr/local/share/ca-certificates/testbed-gateway.crt"


@needs_tools
def test_the_users_nss_database_trusts_the_ca(vm):
    out = subprocess.run(["certutil", "-L", "-d", f"sql:{vm['home'] / '.pki/nssdb'}"],
                         capture_output=True, text=True, check=True).stdout
    assert any(line.startswith(NICK) and line.split()[-1] == "C,," for line in out.splitlines())


@needs_tools
@pytest.mark.skipif(shutil.which("keytool") is None or
                    not Path("/etc/ssl/certs/java/cacerts").is_file(), reason="no Java here")
def test_javas_store_holds_the_ca(vm):
    store = vm["root"] / "etc/ssl/certs/java/cacerts"
    done = subprocess.run(["keytool", "-list", "-keystore", str(store), "-storepass", "changeit",
                           "-alias", "testbed-gateway"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_tools
def test_running_it_twice_keeps_one_ca_in_the_nss_database(vm):
    env = {**os.environ, "ROOT": str(vm["root"])}
    again = subprocess.run(["sh", str(SCRIPT), str(vm["ca"]), str(vm["home"])], env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    out = subprocess.run(["certutil", "-L", "-d", f"sql:{vm['home'] / '.pki/nssdb'}"],
                         capture_output=True, text=True, check=True).stdout
    assert sum(line.startswith(NICK) for line in out.splitlines()) == 1


def test_every_run_sends_the_scripts_and_run_setup_calls_trust_ca():
    with tarfile.open(fileobj=io.BytesIO(code_archive())) as tar:
        names = tar.getnames()
    assert set(SETUP_SCRIPTS) <= set(names)
    text = RUN_SETUP.read_text()  # the scripts are kept in /opt/testbed with the code
    assert 'cp "$UPLOAD/run-setup.sh" "$UPLOAD/trust-ca.sh" /opt/testbed/' in text
    assert 'sh /opt/testbed/trust-ca.sh "$crt"' in text
