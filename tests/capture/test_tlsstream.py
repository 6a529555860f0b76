"""Reading a passed-through handshake's outcome from record headers
(``testbed.capture.tlsstream``), on real handshakes: OpenSSL (Python's ``ssl``) on both sides
through memory BIOs, TLS 1.2 and 1.3, a client that trusts the server and one that does not,
fed to the scanner in chunks of any size as a proxy would see them."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from testbed.capture.tlsstream import FAILED, OK, UNKNOWN, RecordScan, judge


def _self_signed(d: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
            .sign(key, hashes.SHA256()))
    c, k = d / f"{name}.pem", d / f"{name}.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return c, k


def _handshake(tmp: Path, version: ssl.TLSVersion, trusted: bool, chunk: int) -> RecordScan:
    """Run one handshake (and one request/answer when it works), feeding every byte either
    side sends to a scanner in chunks of ``chunk`` bytes."""
    cert, key = _self_signed(tmp, "srv.test")
    other, _ = _self_signed(tmp, "other.test")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    server_ctx.minimum_version = server_ctx.maximum_version = version
    client_ctx = ssl.create_default_context(cafile=str(cert if trusted else other))
    bios = [ssl.MemoryBIO() for _ in range(4)]
    client = client_ctx.wrap_bio(bios[0], bios[1], server_hostname="srv.test")
    server = server_ctx.wrap_bio(bios[2], bios[3], server_side=True)
    scan = RecordScan()

    def pump() -> None:
        for src, dst, from_client in ((bios[1], bios[2], True), (bios[3], bios[0], False)):
            data = src.read()
            for i in range(0, len(data), chunk):
                scan.feed(from_client, data[i:i + chunk])
            dst.write(data)

    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side in (("client", client), ("server", server)):
            if done[name]:
                continue
            try:
                side.do_handshake()
                done[name] = True
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except ssl.SSLError:
                pump()
                return scan
            pump()
        if all(done.values()):
            break
    client.write(b"GET / HTTP/1.0\r\n\r\n")
    pump()
    try:
        server.read(1024)
        server.write(b"HTTP/1.0 200 OK\r\n\r\n")
    except ssl.SSLWantReadError:
        pass
    pump()
    return scan


@pytest.mark.parametrize("chunk", [1, 7, 4096])
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "refused"])
def test_a_real_handshake_is_read_from_its_record_headers(tmp_path, version, trusted, chunk):
    outcome, why = judge(_handshake(tmp_path, version, trusted, chunk))
    assert outcome == (OK if trusted else FAILED), why


def test_a_server_that_never_answers_failed():
    scan = RecordScan()
    scan.feed(True, bytes([22, 3, 1, 0, 4]) + b"\x01\x00\x00\x00")
    assert judge(scan)[0] == FAILED


def test_a_connection_cut_after_the_servers_first_flight_is_unknown():
    scan = RecordScan()
    scan.feed(True, bytes([22, 3, 1, 0, 1, 0]))
    scan.feed(False, bytes([22, 3, 3, 0, 1, 0]))
    assert judge(scan) == (UNKNOWN, "the connection ended before the client answered")


def test_what_is_not_tls_is_unknown():
    scan = RecordScan()
    scan.feed(True, b"GET / HTTP/1.1\r\n\r\n")
    scan.feed(False, b"HTTP/1.1 200 OK\r\n\r\n")
    assert judge(scan)[0] == UNKNOWN and scan.garbled
