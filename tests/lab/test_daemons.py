"""Real server software from Debian in the simulated internet, for real (root): nginx in
Germany and prosody in China (tests/lab/daemon_fixture/), started with the gateway, fetched
from over HTTPS with the guests' trust store, their logs kept in the run, nothing of them left
after teardown or after a sweep of the run's tag; a daemon that cannot start is one line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed._errors import LabError
from testbed.lab import daemons, labca, netns, sandbox
from testbed.lab.internet_map import load_internet
from testbed.provider.gateway import GATEWAY_IP, NetnsGateway

from .conftest import ROOT, needs_root

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(shutil.which("nginx") is None or shutil.which("prosody") is None,
                                 reason="needs nginx and prosody (make system installs them)")]

FIXTURE = Path(__file__).with_name("daemon_fixture")
NGINX, PROSODY = "www.de.lab.example", "xmpp.cn.lab.example"
URLS = {  # url -> (address:port it resolves to, what the body says)
    "https://www.de.lab.example/": ("198.51.100.80:443", "served by nginx as www.de.lab.example"),
    "https://de.lab.example/index.html": ("198.51.100.80:443", "at 198.51.100.80"),
    "https://xmpp.cn.lab.example:5281/files/hello.txt": ("203.0.113.52:5281",
                                                         "served by prosody as xmpp.cn"),
}


def _curl(ns: str, url: str, at: str, cafile: Path) -> subprocess.CompletedProcess[str]:
    host, port = url.split("/")[2].split(":")[0], at.split(":")[1]
    return subprocess.run(["ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "10",
                           "--cacert", str(cafile), "--resolve",
                           f"{host}:{port}:{at.split(':')[0]}", url],
                          capture_output=True, text=True, timeout=30)


def _uids_running(low: int, high: int) -> list[str]:
    out = []
    for proc in Path("/proc").iterdir():
        try:
            status = (proc / "status").read_text() if proc.name.isdigit() else ""
        except OSError:
            continue
        m = re.search(r"^Uid:\s+(\d+)", status, re.M)
        if m and low <= int(m.group(1)) < high:
            out.append(f"{proc.name} (uid {m.group(1)})")
    return out


def _tmp_owned_by(low: int, high: int) -> list[str]:
    found = []
    for top in (Path("/tmp"), Path("/var/tmp"), Path("/run")):
        for p in top.iterdir() if top.is_dir() else []:
            try:
                if low <= p.lstat().st_uid < high:
                    found.append(str(p))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("daemons")
    gw = NetnsGateway(work, load_internet(FIXTURE / "internet.yaml"))
    gateway_ca = labca.LabCa("standing in for the gateway's").save(work / "gateway-ca.pem")
    out: dict[str, Any] = {"work": work, "tag": gw.tag}
    try:
        gw.start()
        # the trust store a guest of this run gets (testbed.lab.provider builds it so)
        fs = sandbox.prepare(work / "guests" / "client", os.getuid(),
                             labca.guest_cas(work, gateway_ca))
        bundle = fs.etc / "ssl" / "certs" / "ca-certificates.crt"
        out["fetched"] = {url: _curl(gw.ns, url, at, bundle) for url, (at, _) in URLS.items()}
        out["system only"] = _curl(gw.ns, "https://www.de.lab.example/", "198.51.100.80:443",
                                   sandbox.SYSTEM_BUNDLE)
        out["plain row"] = subprocess.run(
            ["ip", "netns", "exec", gw.ns, "curl", "-sS", "--max-time", "10",
             "http://198.51.100.7/hello"], capture_output=True, text=True, timeout=30)
        out["dns"] = subprocess.run(
            ["ip", "netns", "exec", gw.ns, sys.executable, "-c",
             "import sys; from dnslib import DNSRecord\n"
             "for n in sys.argv[1:]: print(n, DNSRecord.parse(DNSRecord.question(n)"
             f".send('{GATEWAY_IP}', 53, timeout=5)).short())",
             NGINX, "de.lab.example", PROSODY], capture_output=True, text=True, timeout=30)
        # from a daemon's namespace: the lab resolver and another daemon (federation)
        s0 = gw.daemons.namespaces[0]
        out["daemon to daemon"] = _curl(s0, "https://xmpp.cn.lab.example:5281/files/hello.txt",
                                        "203.0.113.52:5281", labca.lab_ca_file(work))
        out["daemon dns"] = subprocess.run(
            ["ip", "netns", "exec", s0, sys.executable, "-c",
             "from dnslib import DNSRecord\n"
             f"print(DNSRecord.parse(DNSRecord.question('{PROSODY}').send('{GATEWAY_IP}', 53,"
             " timeout=5)).short())"], capture_output=True, text=True, timeout=30)
        out["processes"] = {d.row.name: [(Path(f"/proc/{pid}/status").read_text())
                                         for pid in netns.pids_in(d.ns)]
                            for d in gw.daemons.started}
        out["guest cas"] = labca.guest_cas(work, gateway_ca)
    finally:
        gw.teardown()
    out["namespaces after"] = [n for n in netns.namespaces() if n.startswith(f"tbed-{gw.tag}-")]
    yield out


@pytest.mark.parametrize("url", list(URLS))
def test_a_real_server_answers_https_to_a_client_trusting_the_guests_cas(lab, url):
    res = lab["fetched"][url]
    assert res.returncode == 0, f"{url}: curl failed: {res.stderr}"
    assert URLS[url][1] in res.stdout


def test_without_the_lab_ca_the_servers_certificate_is_refused(lab):
    res = lab["system only"]
    assert res.returncode == 60, f"expected a certificate error, got {res.returncode}: {res}"


def test_the_guests_trust_the_gateway_ca_and_the_lab_ca(lab):
    cas = lab["guest cas"]
    assert [p.name for p in cas] == ["gateway-ca.pem", "lab-ca.pem"]
    assert "testbed lab CA" in subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-in", str(cas[1])],
        capture_output=True, text=True).stdout


def test_a_daemon_reaches_the_lab_resolver_and_another_daemon(lab):
    assert lab["daemon dns"].stdout.strip() == "203.0.113.52", lab["daemon dns"]
    res = lab["daemon to daemon"]
    assert res.returncode == 0 and "served by prosody" in res.stdout, res


def test_the_simulated_servers_answer_next_to_the_daemons(lab):
    assert "lab server 198.51.100.7" in lab["plain row"].stdout, lab["plain row"]


def test_the_lab_resolver_answers_for_every_name_of_a_daemon_row(lab):
    lines = dict(line.split(" ", 1) for line in lab["dns"].stdout.splitlines())
    assert lines == {NGINX: "198.51.100.80", "de.lab.example": "198.51.100.80",
                     PROSODY: "203.0.113.52"}, lab["dns"]


@pytest.mark.parametrize("row", [NGINX, PROSODY])
def test_a_daemon_runs_as_a_user_of_its_own_without_capabilities(lab, row):
    statuses = lab["processes"][row]
    assert statuses, f"no process of {row} in its namespace"
    index = [NGINX, PROSODY].index(row)
    uid = daemons.daemon_uid(lab["tag"], index)
    daemon = [s for s in statuses if not re.search(r"^Name:\s+bwrap$", s, re.M)]
    assert daemon, f"only bwrap runs in the namespace of {row}"
    for status in statuses:  # bwrap's own watcher stays root, without capabilities too
        assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    for status in daemon:
        assert re.search(rf"^Uid:\s+{uid}\s+{uid}\s+{uid}\s+{uid}$", status, re.M), status


@pytest.mark.parametrize("row,logs", [(NGINX, ("access.log", "error.log")),
                                      (PROSODY, ("prosody.log",))])
def test_the_daemons_logs_stay_in_the_run(lab, row, logs):
    folder = lab["work"] / "lab" / "daemons" / row
    assert (folder / "daemon.log").is_file()
    for name in logs:
        assert (folder / "logs" / name).stat().st_size > 0, f"{name} of {row} is empty"
    if row == NGINX:
        assert "GET /index.html" in (folder / "logs" / "access.log").read_text()
    assert all(p.lstat().st_uid == 0 for p in folder.rglob("*")), "not handed back to root"


def test_nothing_of_the_daemons_is_left_after_teardown(lab):
    low = daemons.daemon_uid(lab["tag"], 0)
    assert lab["namespaces after"] == []
    assert _uids_running(low, low + daemons.MAX_DAEMONS) == []
    assert _tmp_owned_by(low, low + daemons.MAX_DAEMONS) == []


def _broken(tmp_path: Path, edit: Any) -> Path:
    folder = tmp_path / "scenario"
    shutil.copytree(FIXTURE, folder)
    data = yaml.safe_load((folder / "internet.yaml").read_text())
    edit(data, folder)
    (folder / "internet.yaml").write_text(yaml.safe_dump(data))
    return folder / "internet.yaml"


def _nginx(data: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in data["servers"] if r["name"] == NGINX)["daemon"]  # type: ignore


FAILURES = {
    "a config the daemon refuses": (
        lambda d, folder: (folder / "servers" / "nginx.conf").write_text("nonsense;\n"),
        r"daemon nginx on www\.de\.lab\.example \(198\.51\.100\.80\) exited with status 1 "
        r"before port 443 answered \(last output: .*nonsense.*\); its log: .*daemon\.log$"),
    "a program that is not installed": (
        lambda d, folder: _nginx(d).update(command=["no-such-daemon-xyz"]),
        r"daemon no-such-daemon-xyz on www\.de\.lab\.example .*no program"),
    "a port that never answers": (
        lambda d, folder: _nginx(d).update(ready=8443, ready_seconds=2),
        r"daemon nginx on www\.de\.lab\.example .*did not answer on port 8443 within 2 s.*"
        r"its log: .*daemon\.log$"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_daemon_that_does_not_come_up_is_one_line_and_leaves_nothing(tmp_path, case):
    edit, expected = FAILURES[case]
    gw = NetnsGateway(tmp_path / "run", load_internet(_broken(tmp_path, edit)))
    try:
        with pytest.raises(LabError) as caught:
            gw.start()
    finally:
        gw.teardown()
    message = str(caught.value)
    assert "\n" not in message
    assert re.search(expected, message), message
    assert [n for n in netns.namespaces() if n.startswith(f"tbed-{gw.tag}-")] == []
    low = daemons.daemon_uid(gw.tag, 0)
    assert _uids_running(low, low + daemons.MAX_DAEMONS) == []


def test_a_sweep_of_the_runs_tag_removes_its_daemons(tmp_path):
    gw = NetnsGateway(tmp_path, load_internet(FIXTURE / "internet.yaml"))
    try:
        gw.start()
        names = list(gw.daemons.namespaces)
        assert len(names) == 2 and all(netns.pids_in(ns) for ns in names)
        removed = netns.sweep(gw.tag)  # what `testbed lab cleanup` does after a killed run
    finally:
        gw.teardown()
    assert {f"netns {ns}" for ns in names} <= set(removed)
    low = daemons.daemon_uid(gw.tag, 0)
    assert _uids_running(low, low + daemons.MAX_DAEMONS) == []


def test_the_fixture_is_valid():
    res = subprocess.run([str(ROOT / ".venv" / "bin" / "testbed"), "validate",
                          str(FIXTURE / "internet.yaml")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_run_whose_daemon_program_is_missing_starts_nothing(tmp_path):
    internet = _broken(tmp_path, lambda d, folder: _nginx(d).update(
        command=["no-such-daemon-xyz", "-c", "{config}/nginx.conf"]))
    res = subprocess.run([sys.executable, "-m", "testbed", "run",
                          str(internet.with_name("scenario.yaml")), "--results",
                          str(tmp_path / "results")], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "nothing was started" in res.stderr + res.stdout
    assert ("no-such-daemon-xyz: the daemon of www.de.lab.example (198.51.100.80) in "
            "internet.yaml; install its package") in res.stderr + res.stdout
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "results").exists()  # no run folder: nothing was made
