"""The CAs a lab guest trusts (the gateway's interception CA, and the run's lab CA when real
servers run in its simulated internet: `testbed.lab.labca.guest_cas`) in every trust store a
real app may read.

* the system bundle ``/etc/ssl/certs/ca-certificates.crt`` and the hashed folder (OpenSSL,
  and GnuTLS, which Debian builds to read that bundle), in the guest's copy of /etc/ssl;
* an NSS database in the guest's home, ``~/.pki/nssdb`` (browsers, mail and chat clients built
  on NSS), made with ``certutil`` (Debian's ``libnss3-tools``);
* Java's trust store, the guest's copy of ``/etc/ssl/certs/java/cacerts`` (where Debian's JDKs
  link ``lib/security/cacerts``), when Java's ``keytool`` is installed.

Each store's outcome is recorded (``TrustRecord``, ``<guest>/trust.json``): installed, or
skipped with the reason (no such tool, no Java). A CA that is no certificate at all is
skipped too (tests use markers); a real certificate a tool refuses is an error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from testbed._errors import LabError
from testbed.run.files import GUEST_TRUST

SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # also the guest's (its own copy)
NSS_DB = ".pki/nssdb"  # relative to the home: where NSS apps look for the user's database
JAVA_STORE = "certs/java/cacerts"  # relative to /etc/ssl
JAVA_PASSWORD = "changeit"  # Debian's well-known password of that store (not a secret)
ALIAS = "testbed-gateway-ca"  # the first CA's (the gateway's); the others' get "-<n>"
NICKNAME = "testbed gateway CA"
RECORD = GUEST_TRUST  # in the guest's folder of the run
TIMEOUT = 120.0
# keytool's JVM started for one short job: the quick compiler only and one GC thread (half
# the CPU time of its default start-up); a JVM that knows neither option ignores them
KEYTOOL_JVM = ("-J-XX:+IgnoreUnrecognizedVMOptions", "-J-XX:TieredStopAtLevel=1",
               "-J-XX:+UseSerialGC")


@dataclass(frozen=True)
class StoreResult:
    store: str  # "system", "nss", "java"
    installed: bool
    where: str
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "installed": self.installed, "where": self.where,
                **({"note": self.note} if self.note else {})}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StoreResult:
        return cls(str(d["store"]), bool(d["installed"]), str(d["where"]),
                   str(d.get("note", "")))


@dataclass(frozen=True)
class TrustRecord:
    """Where a guest's CA went, store by store."""

    stores: tuple[StoreResult, ...]

    def installed(self, store: str) -> bool:
        return any(s.store == store and s.installed for s in self.stores)

    def to_json(self) -> dict[str, Any]:
        return {"stores": [s.to_json() for s in self.stores]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrustRecord:
        return cls(tuple(StoreResult.from_json(s) for s in d.get("stores", [])))


def system_store(ssl: Path, trust: Path | Sequence[Path] | None) -> None:
    """A guest's /etc/ssl in ``ssl``: the system's (its keys left out), the bundle plus
    ``trust``, and the hashed names of the CAs (OpenSSL's CApath)."""
    cas = [trust] if isinstance(trust, Path) else list(trust or [])
    if ssl.exists():
        shutil.rmtree(ssl)
    if Path("/etc/ssl").is_dir():
        shutil.copytree("/etc/ssl", ssl, symlinks=True,
                        ignore=lambda d, names: ["private"] if d == "/etc/ssl" else [])
    certs = ssl / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    bundle = certs / SYSTEM_BUNDLE.name
    if bundle.is_symlink():
        bundle.unlink()
    system = SYSTEM_BUNDLE.read_text() if SYSTEM_BUNDLE.is_file() else ""
    pems = [ca.read_text() for ca in cas]
    bundle.write_text(system + ("\n" if system and not system.endswith("\n") else "")
                      + "".join(p if p.endswith("\n") else p + "\n" for p in pems))
    for i, pem in enumerate(pems):
        (certs / ("testbed-lab-ca.pem" if i == 0 else f"testbed-lab-ca-{i}.pem")).write_text(pem)
    if pems and shutil.which("openssl"):  # hashed names, for programs that look up a CApath
        subprocess.run(["openssl", "rehash", str(certs)], capture_output=True,
                       check=False, timeout=60)


def is_certificate(ca: Path) -> bool:
    """Whether ``ca`` holds a PEM certificate OpenSSL can read (through ``cryptography``, in
    this process: the template is made on the guests' critical path)."""
    try:
        x509.load_pem_x509_certificate(ca.read_bytes())
    except ValueError:
        return False
    return True


def _tool(argv: list[str], what: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"{what}: {argv[0]} did not run: {e}") from e
    if done.returncode != 0:
        raise LabError(f"{what}: {argv[0]} failed ({done.returncode}): "
                       f"{(done.stderr or done.stdout).strip()[-400:]}")
    return done.stdout


def nickname(index: int) -> str:
    """The NSS nickname of the ``index``-th CA a guest trusts."""
    return NICKNAME if index == 0 else f"{NICKNAME} {index}"


def alias(index: int) -> str:
    """The Java alias of the ``index``-th CA a guest trusts."""
    return ALIAS if index == 0 else f"{ALIAS}-{index}"


def nss_db(home: Path, cas: Sequence[Path], folder: str = NSS_DB) -> StoreResult:
    """An NSS database in ``home``/``folder`` (made with an empty password unless the home
    brought one) that trusts ``cas`` for TLS servers."""
    db = home / folder
    where = f"~/{folder}"
    if shutil.which("certutil") is None:
        return StoreResult("nss", False, where, "certutil is not installed (libnss3-tools)")
    db.mkdir(parents=True, exist_ok=True)
    if not (db / "cert9.db").exists():
        _tool(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"],
              "the guest's NSS database")
    for i, ca in enumerate(cas):
        _tool(["certutil", "-A", "-d", f"sql:{db}", "-n", nickname(i), "-t", "C,,", "-i",
               str(ca)], "a CA in the guest's NSS database")
    return StoreResult("nss", True, where)


def java_store(ssl: Path, cas: Sequence[Path]) -> StoreResult:
    """``cas`` in the guest's copy of Java's trust store, if Java is present."""
    store = ssl / JAVA_STORE
    where = f"/etc/ssl/{JAVA_STORE}"
    keytool = shutil.which("keytool")
    if keytool is None:
        return StoreResult("java", False, where, "no Java here (keytool is not installed)")
    if not store.is_file():
        return StoreResult("java", False, where, "no Java trust store on this host "
                           "(ca-certificates-java is not installed)")
    if store.is_symlink():  # a link into the host's: write a copy of our own
        data = store.read_bytes()
        store.unlink()
        store.write_bytes(data)
    for i, ca in enumerate(cas):
        base = [*KEYTOOL_JVM, "-keystore", str(store), "-storepass", JAVA_PASSWORD,
                "-alias", alias(i)]
        add = [keytool, "-importcert", "-noprompt", "-trustcacerts", *base, "-file", str(ca)]
        try:
            _tool(add, "a CA in the guest's Java trust store")
        except LabError:  # a guest folder made again holds an older CA of ours: replace it
            if subprocess.run([keytool, "-delete", *base], capture_output=True, check=False,
                              timeout=TIMEOUT).returncode != 0:
                raise
            _tool(add, "a CA in the guest's Java trust store")
    return StoreResult("java", True, where)


@dataclass(frozen=True)
class Template:
    """A guest's stores made once for a list of CAs, in ``folder`` (``ssl/``: a whole guest
    /etc/ssl, Java's store included; ``nssdb/``: an NSS database), to be copied into each guest
    by ``install``: certutil, and keytool's JVM, run once per run instead of once per guest."""

    folder: Path
    cas: tuple[Path, ...]
    certificates: bool  # every CA is a certificate the tools accept
    nss: StoreResult | None = None  # made once: its outcome (``where`` set per guest)
    java: StoreResult | None = None

    @property
    def ssl(self) -> Path:
        return self.folder / "ssl"

    @property
    def nssdb(self) -> Path:
        return self.folder / TEMPLATE_NSS


TEMPLATE_NSS = "nssdb"


def build_template(folder: Path, cas: Sequence[Path]) -> Template:
    """The NSS database and Java store of ``Template`` in ``folder`` (its ``ssl/``, the guest's
    /etc/ssl with the system bundle, is already made: ``sandbox``); keytool's JVM runs beside
    certutil."""
    certificates = bool(cas) and all(is_certificate(ca) for ca in cas)
    if not certificates:
        return Template(folder, tuple(cas), False)
    with ThreadPoolExecutor(max_workers=1) as beside:
        java = beside.submit(java_store, folder / "ssl", cas)
        nss = nss_db(folder, cas, TEMPLATE_NSS)
        return Template(folder, tuple(cas), True, nss, java.result())


def _nss_from(template: Template | None, home: Path, cas: Sequence[Path],
              folder: str) -> StoreResult:
    """``nss_db``, or the template's database copied in where the home has none yet."""
    db = home / folder
    if template is None or template.nss is None or (db / "cert9.db").exists():
        return nss_db(home, cas, folder)  # a profile's own database: our CAs added to it
    if not template.nss.installed:
        return StoreResult("nss", False, f"~/{folder}", template.nss.note)
    shutil.copytree(template.nssdb, db, dirs_exist_ok=True)
    return StoreResult("nss", True, f"~/{folder}")


def install(home: Path, ssl: Path, trust: Path | Sequence[Path] | None,
            record: Path, app_nss_db: str | None = None,
            template: Template | None = None) -> TrustRecord:
    """The CAs ``trust`` in the guest's NSS database and Java store (the system bundle is
    ``sandbox``'s, recorded here), and in the app's own NSS database ``app_nss_db`` (relative
    to ``home``; an app profile's ``nss_db``) when it has one; the record is written to
    ``record``. With ``template`` (made for the same CAs, its ``ssl/`` already copied to
    ``ssl``) the stores are copies of its, with the same record."""
    extra = [app_nss_db] if app_nss_db and app_nss_db.strip("/") != NSS_DB else []
    cas = [trust] if isinstance(trust, Path) else list(trust or [])
    if template is not None and list(template.cas) != cas:
        raise LabError(f"the trust-store template {template.folder} was made for other CAs")
    bundle = str(SYSTEM_BUNDLE)
    if not cas:
        stores: tuple[StoreResult, ...] = (
            StoreResult("system", False, bundle, "no CA to install (interception is off)"),)
    elif not (template.certificates if template is not None
              else all(is_certificate(ca) for ca in cas)):
        note = "a CA is not a PEM certificate: only the system bundle holds them"
        stores = (StoreResult("system", True, bundle),
                  *(StoreResult("nss", False, f"~/{f}", note) for f in [NSS_DB, *extra]),
                  StoreResult("java", False, f"/etc/ssl/{JAVA_STORE}", note))
    else:
        java = template.java if template is not None and template.java else None
        stores = (StoreResult("system", True, bundle),
                  *(_nss_from(template, home, cas, f) for f in [NSS_DB, *extra]),
                  java or java_store(ssl, cas))
    out = TrustRecord(stores)
    record.write_text(json.dumps(out.to_json(), indent=1) + "\n")
    return out
