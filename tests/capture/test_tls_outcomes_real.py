"""TLS outcomes decided by difference, with real components: Debian's curl and ``openssl
s_server``, the reference client's pinning network code, and a real mitmdump in transparent
mode with the addon, in three network namespaces of their own (client, gateway, servers).

Each client connects twice to a host, as an app that retries does: the first connection is
intercepted, the second (after a refusal) is the gateway's retry without interception. The
retry waits a moment (as the reference client does): mitmdump must have seen the refusal
first, else the second try is intercepted again and the host stays ``unclassified``."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from testbed._errors import CaptureError
from testbed.capture import Mitmdump
from testbed.capture.outcomes import PINNED, TlsOutcome, classify
from testbed.lab import netns
from testbed.provider.gateway import base_env
from testbed.run import TlsRecord, shapes

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("curl", "openssl", "iptables")),
    reason="needs root, curl, openssl and iptables")]

RETRY_AFTER = 0.3  # seconds between a client's refusal and its retry
PORT = 8443  # mitmdump's port in the gateway namespace
GOOD, OTHER, EXPIRED = "10.98.2.2", "10.98.2.3", "10.98.2.4"
NAMES = {GOOD: "good.test", OTHER: "other.test", EXPIRED: "expired.test"}
# Debian's TLS clients, each trusting one CA file only: argv for (name, address, CA file)
CLIENTS = {
    "curl": lambda name, address, ca: [
        "curl", "-sS", "-o", "/dev/null", "--max-time", "5", "--cacert", ca,
        "--resolve", f"{name}:443:{address}", f"https://{name}/"],
    "openssl s_client": lambda name, address, ca: [
        "timeout", "5", "openssl", "s_client", "-connect", f"{address}:443", "-servername", name,
        "-CAfile", ca, "-verify_return_error", "-verify_hostname", name, "-brief"],
    "gnutls-cli": lambda name, address, ca: [
        "timeout", "5", "gnutls-cli", "--x509cafile", ca, "--sni-hostname", name,
        "--verify-hostname", name, "-p", "443", address],
}


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(obj: x509.Certificate) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def _certs(d: Path) -> Path:
    """A server CA (``ca.pem``) and, per server, ``NAME.pem``/``NAME.key`` signed by it; the
    expired server's certificate ended yesterday. Returns the CA file."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test server CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=30))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    (d / "ca.pem").write_bytes(_pem(ca))
    for address, name in NAMES.items():
        key = _key()
        end = now - datetime.timedelta(days=1) if name == "expired.test" else \
            now + datetime.timedelta(days=10)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=20)).not_valid_after(end)
                .add_extension(x509.SubjectAlternativeName(
                    [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address(address))]), False)
                .sign(ca_key, hashes.SHA256()))
        (d / f"{name}.pem").write_bytes(_pem(cert))
        (d / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    return d / "ca.pem"


@dataclass
class Lab:
    """Client, gateway (mitmdump, REDIRECT of TCP/443) and servers namespaces."""

    tag: str
    dir: Path
    mitm: Mitmdump

    @property
    def client(self) -> str:
        return f"{netns.NS_PREFIX}{self.tag}-cli"

    @property
    def gateway(self) -> str:
        return f"{netns.NS_PREFIX}{self.tag}-gw"

    @property
    def servers(self) -> str:
        return f"{netns.NS_PREFIX}{self.tag}-srv"

    def spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        return netns.spawn(self.gateway, argv, log, base_env() | {"HOME": str(self.dir)})

    def connect(self, client: str, name: str, cafile: Path) -> int:
        """``client`` (a key of CLIENTS) connects to server ``name`` trusting ``cafile`` only;
        its exit status (0: it trusted what it was shown)."""
        address = next(a for a, n in NAMES.items() if n == name)
        res = subprocess.run(["ip", "netns", "exec", self.client,
                              *CLIENTS[client](name, address, str(cafile))],
                             capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        return res.returncode

    def curl(self, name: str, cafile: Path) -> int:
        return self.connect("curl", name, cafile)

    def outcomes(self) -> dict[str, TlsOutcome]:
        assert self.mitm.stop(), "mitmdump did not stop cleanly after SIGTERM"
        lines = self.mitm.tls_log.read_text().splitlines()
        records = [TlsRecord.from_json(shapes.obj(json.loads(x), "line")) for x in lines]
        written = {(r.client, r.sni or r.server): r.outcome for r in records
                   if r.event == "outcome"}
        decided = {o.host: o for o in classify(records)}
        assert written == {(o.client, h): o.outcome for h, o in decided.items()}, \
            "the outcomes mitmdump wrote at shutdown differ from those read back from its log"
        return decided


def _setup(lab: Lab) -> list[subprocess.Popen[bytes]]:
    cli, gw, srv = lab.client, lab.gateway, lab.servers
    for ns in (cli, gw, srv):
        netns.sh("ip", "netns", "add", ns)
        netns.sh("ip", "link", "set", "lo", "up", ns=ns)
    netns.sh("ip", "link", "add", "c0", "netns", cli, "type", "veth", "peer", "name", "g0",
             "netns", gw)
    netns.sh("ip", "link", "add", "g1", "netns", gw, "type", "veth", "peer", "name", "s0",
             "netns", srv)
    for ns, link, addr in ((cli, "c0", "10.98.1.2/24"), (gw, "g0", "10.98.1.1/24"),
                           (gw, "g1", "10.98.2.1/24"), (srv, "s0", f"{GOOD}/24")):
        netns.sh("ip", "addr", "add", addr, "dev", link, ns=ns)
        netns.sh("ip", "link", "set", link, "up", ns=ns)
    for extra in (OTHER, EXPIRED):
        netns.sh("ip", "addr", "add", f"{extra}/24", "dev", "s0", ns=srv)
    netns.sh("ip", "route", "add", "default", "via", "10.98.1.1", ns=cli)
    netns.sh("ip", "route", "add", "default", "via", "10.98.2.1", ns=srv)
    netns.sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=gw)
    netns.sh("iptables", "-t", "nat", "-A", "PREROUTING", "-i", "g0", "-p", "tcp", "--dport",
             "443", "-j", "REDIRECT", "--to-ports", str(PORT), ns=gw)
    procs = []
    for address, name in NAMES.items():
        argv = ["openssl", "s_server", "-quiet", "-www", "-accept", f"{address}:443",
                "-cert", str(lab.dir / f"{name}.pem"), "-key", str(lab.dir / f"{name}.key")]
        procs.append(netns.spawn(srv, argv, lab.dir / f"s_server-{name}.log",
                                 {"PATH": os.environ["PATH"]}))
    lab.mitm.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the servers listen
        up = netns.sh("ss", "-Hltn", ns=srv)
        if all(f"{a}:443" in up for a in NAMES):
            break
        time.sleep(0.1)
    return procs


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The three namespaces; the gateway checks the servers' certificates against their CA
    unless the test is parametrized ``lab`` = False (mitmproxy's ``ssl_insecure``)."""
    tag = secrets.token_hex(2)
    ca = _certs(tmp_path)
    verify = getattr(request, "param", True)
    mitm = Mitmdump(None, PORT, tmp_path / "flows.mitm",  # type: ignore[arg-type]
                    tmp_path / "mitm-conf", tmp_path / "mitmdump.log",
                    upstream_trust=ca if verify else None)
    lab = Lab(tag, tmp_path, mitm)
    mitm.gateway = lab  # type: ignore[assignment]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = _setup(lab)
        yield lab
    finally:
        if mitm.proc is not None and mitm.proc.poll() is None:
            mitm.stop()
        netns.delete_all([lab.client, lab.gateway, lab.servers])
        netns.reap(procs)
        assert not [n for n in netns.namespaces() if tag in n], "a namespace was left behind"


def _bundle(lab: Lab, *files: Path) -> Path:
    out = lab.dir / f"bundle-{len(list(lab.dir.glob('bundle-*')))}.pem"
    out.write_bytes(b"".join(f.read_bytes() for f in files))
    return out


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_client_without_our_ca_is_untrusted_never_pinned(lab: Lab, client: str):
    server_ca = lab.dir / "ca.pem"  # trusts the servers, not the gateway
    first = [lab.connect(client, n, server_ca) for n in ("good.test", "other.test")]
    time.sleep(RETRY_AFTER)
    second = [lab.connect(client, n, server_ca) for n in ("good.test", "other.test")]
    assert all(rc != 0 for rc in first), f"{client} accepted the gateway's certificate it lacks"
    assert second == [0, 0], f"{client}'s retry without interception did not get through"
    got = lab.outcomes()
    assert {h: o.outcome for h, o in got.items()} == \
        {"good.test": "untrusted", "other.test": "untrusted"}, [o.reason for o in got.values()]
    assert all(o.outcome != PINNED for o in got.values())


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_client_with_our_ca_is_intercepted(lab: Lab, client: str):
    both = _bundle(lab, lab.dir / "ca.pem", lab.mitm.ca_cert)
    assert [lab.connect(client, n, both) for n in ("good.test", "other.test")] == [0, 0]
    got = lab.outcomes()
    assert {h: o.outcome for h, o in got.items()} == \
        {"good.test": "intercepted", "other.test": "intercepted"}


@pytest.mark.parametrize("lab", [True, False], indirect=True,
                         ids=["gateway-verifies", "gateway-insecure"])
def test_an_expired_server_is_broken(lab: Lab):
    both = _bundle(lab, lab.dir / "ca.pem", lab.mitm.ca_cert)
    assert lab.curl("good.test", both) == 0
    lab.curl("expired.test", both)  # the gateway refuses the server: curl gets an error page
    time.sleep(RETRY_AFTER)
    assert lab.curl("expired.test", both) != 0, "curl accepted an expired certificate"
    got = lab.outcomes()
    assert got["good.test"].outcome == "intercepted"
    assert got["expired.test"].outcome == "broken", got["expired.test"].reason


def test_the_pinning_build_is_pinned(lab: Lab):
    """The reference client's network code (``testbed.lab.refclient.network``) with a pin
    for good.test: it trusts the gateway's CA elsewhere (``SSL_CERT_FILE``), retries the
    pinned host once, like the pinning build."""
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from testbed.lab.refclient.network import Network\n"
        "net = Network(pins={'good.test': Path(sys.argv[1])})\n"
        "print(net.contact('https://other.test/'), net.contact('https://good.test/'))\n")
    hosts = lab.dir / "hosts"
    hosts.write_text("".join(f"{a} {n}\n" for a, n in NAMES.items()))
    env = {"PATH": os.environ["PATH"], "SSL_CERT_FILE": str(lab.mitm.ca_cert)}
    res = subprocess.run(
        ["ip", "netns", "exec", lab.client, "unshare", "--mount", "sh", "-c",
         'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts), sys.executable, "-c",
         script, str(lab.dir / "good.test.pem")],
        capture_output=True, text=True, timeout=60, env=env)
    assert res.stdout.split() == ["ok", "ok"], res.stdout + res.stderr
    got = lab.outcomes()
    assert got["other.test"].outcome == "intercepted"
    assert got["good.test"].outcome == "pinned", got["good.test"].reason


@pytest.mark.parametrize("rule", ["client", "host"])
def test_a_scenario_rule_passes_through(lab: Lab, rule: str):
    """The rules arrive after mitmdump started (a client's address is known only then)."""
    if rule == "client":
        lab.mitm.pass_through(clients=["10.98.1.2"])
    else:
        lab.mitm.pass_through(hosts=["good.*"])
    server_ca = lab.dir / "ca.pem"  # the gateway's CA is not needed: nothing is opened
    assert lab.curl("good.test", server_ca) == 0
    assert (lab.curl("other.test", server_ca) == 0) is (rule == "client")
    got = lab.outcomes()
    assert got["good.test"].outcome == "passthrough", got["good.test"].reason
    if rule == "host":
        assert got["other.test"].outcome == "unclassified"  # refused, never retried


def test_an_addon_that_cannot_load_stops_the_capture_with_its_error(tmp_path: Path):
    """Without its addon mitmdump would run on and log no TLS at all: a silent hole."""
    tag = secrets.token_hex(2)
    broken = tmp_path / "broken_addon.py"
    broken.write_text("import no_such_module_here\n")
    mitm = Mitmdump(None, PORT, tmp_path / "flows.mitm",  # type: ignore[arg-type]
                    tmp_path / "mitm-conf", tmp_path / "mitmdump.log")
    mitm.addon = broken
    lab = Lab(tag, tmp_path, mitm)
    mitm.gateway = lab  # type: ignore[assignment]
    netns.sh("ip", "netns", "add", lab.gateway)
    try:
        with pytest.raises(CaptureError, match=r"could not load its addon broken_addon\.py: "
                           r"ModuleNotFoundError: No module named 'no_such_module_here' "
                           r"\(see mitmdump\.log\)$"):
            mitm.start()
        assert mitm.proc is not None and mitm.proc.poll() is not None, "mitmdump still runs"
    finally:
        netns.delete_ns(lab.gateway)
