"""What the lab prepares for a daemon row, without running it (no root needed): the lab CA and
the certificates it issues, the placeholders and how config files are rendered, the daemon's
folder and user, its sandbox command, and the CAs a guest is given to trust."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from testbed.lab import daemons, labca, sandbox
from testbed.lab.internet_map import load_internet
from testbed.scenario import daemon_files
from testbed.scenario.data_schema import DAEMON_PLACEHOLDERS

FIXTURE = Path(__file__).with_name("daemon_fixture") / "internet.yaml"
TAGS = ("0000", "0001", "a0b4", "ffff")


@pytest.fixture(scope="module")
def internet():  # type: ignore[no-untyped-def]
    return load_internet(FIXTURE)


@pytest.fixture
def issued(tmp_path: Path, internet):  # type: ignore[no-untyped-def]
    ca = labca.LabCa("test")
    ca_file = ca.save(tmp_path / "lab-ca.pem")
    row = internet.daemons()[0]
    return ca_file, ca.issue(row.names, row.address, tmp_path / "tls"), row


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_issued_certificate_chains_to_the_lab_ca(issued):
    ca_file, out, _ = issued
    ca, leaf = _load(ca_file), _load(out.cert)
    leaf.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage


def test_the_certificate_names_every_name_and_the_address_of_the_row(issued):
    _, out, row = issued
    alt = _load(out.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt.get_values_for_type(x509.DNSName) == ["www.de.lab.example", "de.lab.example"]
    assert [str(a) for a in alt.get_values_for_type(x509.IPAddress)] == [row.address]


def test_the_key_is_its_owners_only_and_the_ca_key_is_never_written(issued, tmp_path):
    _, out, _ = issued
    assert stat.S_IMODE(out.key.stat().st_mode) == 0o600
    keys = [p for p in tmp_path.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()]
    assert keys == [out.key]


def test_each_run_gets_a_ca_of_its_own(tmp_path):
    a, b = labca.LabCa("a"), labca.LabCa("b")
    assert a.cert.public_key() != b.cert.public_key()
    assert isinstance(a.cert.public_key(), ec.EllipticCurvePublicKey)


@pytest.mark.parametrize("lab_ca,gateway", [(False, True), (True, True), (True, False),
                                            (False, False)])
def test_the_cas_a_guest_trusts(tmp_path, lab_ca, gateway):
    gw = tmp_path / "gw.pem" if gateway else None
    if lab_ca:
        labca.LabCa("x").save(labca.lab_ca_file(tmp_path))
    expected = ([gw] if gw else []) + ([tmp_path / "lab" / "lab-ca.pem"] if lab_ca else [])
    assert labca.guest_cas(tmp_path, gw) == expected


def test_the_guest_bundle_holds_every_ca_it_is_given(tmp_path):
    cas = [labca.LabCa(n).save(tmp_path / f"{n}.pem") for n in ("gateway", "lab")]
    fs = sandbox.prepare(tmp_path / "guests" / "v", os.getuid(), cas)
    bundle = (fs.etc / "ssl" / "certs" / "ca-certificates.crt").read_text()
    for ca in cas:
        assert ca.read_text() in bundle
    assert (fs.etc / "ssl" / "certs" / "testbed-lab-ca-1.pem").read_text() == cas[1].read_text()


def test_placeholders_are_the_documented_ones_as_the_daemon_sees_them(internet):
    row = internet.daemons()[0]
    values = daemons.placeholders(row)
    assert set(values) == set(DAEMON_PLACEHOLDERS)
    assert values["address"] == "198.51.100.80" and values["name"] == "www.de.lab.example"
    for key in ("cert", "key", "ca", "config", "data", "logs"):
        assert values[key].startswith(str(daemons.INSIDE) + "/"), key


RENDER = {
    "nginx block": ("server { listen {address}:443; }", "server { listen 1.2.3.4:443; }"),
    "lua table": ('log = { info = "{logs}/x.log" }', 'log = { info = "/l/x.log" }'),
    "doubled": ("map {{address}} {address}", "map {address} 1.2.3.4"),
    "json": ('{"a": {"b": "{name}"}}', '{"a": {"b": "n.example"}}'),
    "nginx variable": ("return 200 ${host};", "return 200 ${host};"),
    "upper case is text": ("{ADDRESS}", "{ADDRESS}"),
    "nothing": ("", ""),
}


@pytest.mark.parametrize("case", list(RENDER))
def test_config_files_are_rendered_leaving_their_own_braces(case):
    text, expected = RENDER[case]
    values = {"address": "1.2.3.4", "logs": "/l", "name": "n.example"}
    if case == "nginx variable":
        with pytest.raises(KeyError):  # {host} is a placeholder: validation refuses it first
            daemon_files.render(text, values)
        assert list(daemon_files.placeholders(text)) == [(1, "host")]
        return
    assert daemon_files.render(text, values) == expected


def test_placeholders_are_found_with_their_lines():
    text = "a {address}\n{{name}}\n\nb {cert} {key}\n"
    assert list(daemon_files.placeholders(text)) == [(1, "address"), (4, "cert"), (4, "key")]


def test_daemon_uids_are_unique_and_apart_from_the_guests():
    uids = {daemons.daemon_uid(t, i) for t in TAGS for i in range(daemons.MAX_DAEMONS)}
    guests = {sandbox.guest_uid(t, i) for t in TAGS for i in range(sandbox.MAX_GUESTS)}
    assert len(uids) == len(TAGS) * daemons.MAX_DAEMONS
    assert not uids & guests
    assert max(uids) < 2**31 and min(uids) > min(guests)
    with pytest.raises(Exception, match="at most"):
        daemons.daemon_uid("0000", daemons.MAX_DAEMONS)


def test_the_sandbox_of_a_daemon(internet, tmp_path):
    row = internet.daemons()[0]
    d = daemons.Daemons(tmp_path, internet, "0abc", "tbed-0abc-net", "10.77.255.2", {})
    argv = d._argv(row, tmp_path / "root", 1234)
    for flag in ("--unshare-pid", "--unshare-ipc", "--new-session", "--no-new-privs",
                 "--clear-groups"):
        assert flag in argv, flag
    pairs = [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == "--bind"]
    assert pairs == [(str(tmp_path / "root"), str(daemons.INSIDE))]  # its folder, nothing else
    ro = [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == "--ro-bind"]
    assert (str(tmp_path / "root" / "resolv.conf"), "/etc/resolv.conf") in ro
    assert (str(tmp_path / "root" / "tls" / "trusted.pem"), str(daemons.SYSTEM_BUNDLE)) in ro
    for private in ("/tmp", "/var/tmp", "/run"):
        assert argv[argv.index(private) - 1] == "--tmpfs", private
    assert argv[argv.index("--reuid") + 1] == "1234"
    tail = argv[argv.index("--no-new-privs") + 2:]
    assert tail == ["nginx", "-c", "/run/daemon/config/nginx.conf", "-e",
                    "/run/daemon/logs/error.log", "-g", "daemon off;"]
