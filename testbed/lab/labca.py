"""The lab CA: a certificate authority made per run that issues the certificates of the real
server software in the simulated internet (`testbed.lab.daemons`), and that the guests trust.

It is not the gateway's interception CA (mitmproxy's, `testbed.capture.mitm`): that one lets
the gateway read what a client sends; this one makes the lab's servers real TLS servers that a
client reaches with or without interception (a ``passthrough`` rule). Its private key lives in
memory only while the run's certificates are issued; it is never written anywhere.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from testbed.run import files as f

VALID_DAYS = 30


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


class LabCa:
    """A fresh CA; ``issue`` writes a server certificate, ``save`` the CA's certificate."""

    def __init__(self, label: str) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "testbed lab"),
                                x509.NameAttribute(NameOID.COMMON_NAME,
                                                   f"testbed lab CA {label}")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(self._name).issuer_name(self._name)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(self, names: Sequence[str], address: str, folder: Path) -> Issued:
        """A server certificate for ``names`` and ``address`` (``folder``/cert.pem, key.pem;
        the key readable by its owner only)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        alt.append(x509.IPAddress(ipaddress.ip_address(address)))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self._name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        out = Issued(folder / "cert.pem", folder / "key.pem")
        out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(out.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as w:
            w.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return out


def lab_ca_file(run: Path) -> Path:
    """Where run ``run`` keeps its lab CA's certificate (there only if the run made one)."""
    return run / f.LAB_CA


def guest_cas(run: Path, gateway_ca: Path | None) -> list[Path]:
    """Every CA a guest of run ``run`` must trust, each a PEM file: the gateway's interception
    CA, then the run's lab CA (when its simulated internet runs real server software). The one
    list every trust store of a guest is built from."""
    out = [gateway_ca] if gateway_ca is not None else []
    lab = lab_ca_file(run)
    return out + ([lab] if lab.is_file() else [])
