"""`testbed run` against real server software, for real (root): a guest's headless probe
fetches over HTTPS from nginx (DE) and prosody (CN) of tests/lab/daemon_fixture/, through the
gateway's interception; the verdicts place both; the servers' own logs are in the run; the
guest's trust store would accept the servers without interception too (lab CA); nothing of
the run is left on the host."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from testbed.lab import daemons

from .conftest import ROOT, TESTBED, lab_state, needs_root, processes_mentioning, run_dirs
from .test_daemons import FIXTURE, NGINX, PROSODY, _tmp_owned_by, _uids_running

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(shutil.which("nginx") is None or shutil.which("prosody") is None,
                                 reason="needs nginx and prosody (make system installs them)")]


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    results = tmp_path_factory.mktemp("results")
    before = lab_state()
    proc = subprocess.run([*TESTBED, "run", str(FIXTURE / "scenario.yaml"),
                           "--results", str(results)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    (run,) = run_dirs(results)
    return {"proc": proc, "run": run, "before": before,
            "tag": json.loads((run / "manifest.json").read_text())["lab"]["tag"]}


def test_the_run_passes_and_places_both_servers(lab_run):
    proc = lab_run["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdicts = json.loads((lab_run["run"] / "verdicts.json").read_text())["verdicts"]
    assert [v["status"] for v in verdicts] == ["pass"] * 3, verdicts


def test_the_guest_got_both_pages(lab_run):
    (log,) = (lab_run["run"] / "guests" / "probe" / "home").glob("app-*.log")
    text = log.read_text()
    assert f"https://{NGINX}/: HTTP 200" in text, text
    assert f"https://{PROSODY}:5281/files/hello.txt: HTTP 200" in text, text


def test_the_servers_saw_the_gateway_and_kept_their_logs(lab_run):
    folder = lab_run["run"] / "lab" / "daemons"
    access = (folder / NGINX / "logs" / "access.log").read_text()
    assert '10.77.255.1 - - ' in access and '"GET / HTTP/1.1" 200' in access, access
    assert "Activated service 'https'" in (folder / PROSODY / "logs" / "prosody.log").read_text()
    tls = [json.loads(line) for line in
           (lab_run["run"] / "capture" / "tls.jsonl").read_text().splitlines()]
    assert {(t["sni"], t["passthrough"]) for t in tls if t["event"] == "clienthello"} == {
        (NGINX, False), (PROSODY, False)}


@pytest.mark.parametrize("row", [NGINX, PROSODY])
def test_the_guests_store_accepts_the_servers_certificate_without_interception(lab_run, row):
    run = lab_run["run"]
    bundle = run / "guests" / "probe" / "etc" / "ssl" / "certs" / "ca-certificates.crt"
    res = subprocess.run(["openssl", "verify", "-CAfile", str(bundle), str(
        run / "lab" / "daemons" / row / "tls" / "cert.pem")], capture_output=True, text=True)
    assert res.returncode == 0 and ": OK" in res.stdout, res.stdout + res.stderr


def test_nothing_of_the_run_is_left(lab_run):
    now, tag = lab_state(), lab_run["tag"]  # (other labs may come and go meanwhile)
    assert [n for kind in now.values() for n in kind if f"tbed-{tag}-" in n or
            n.startswith(f"tb{tag}m")] == []
    assert processes_mentioning(str(lab_run["run"])) == []
    low = daemons.daemon_uid(lab_run["tag"], 0)
    assert _uids_running(low, low + daemons.MAX_DAEMONS) == []
    assert _tmp_owned_by(low, low + daemons.MAX_DAEMONS) == []
    run: Path = lab_run["run"]
    assert all(p.lstat().st_uid == 0 for p in (run / "lab" / "daemons").rglob("*"))
