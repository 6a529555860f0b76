"""Real TLS clients nobody here wrote, in lab guests, through the gateway's interception
(mitmdump), for real: Debian's GnuTLS (``gnutls-cli``), NSS (``tstclnt`` with the guest's
``~/.pki/nssdb``) and OpenSSL (``curl``) fetch a lab HTTPS server, each trusting the gateway's
CA from the store it reads. The app (tests/data/realclients/apps/tlsfetch.yaml) is driven by
an app profile only: its launch command uses the step's ``{host}`` and ``{url}``. One guest
starts from a signed-in profile the scenario names, the other from a fresh home; both homes
are kept in the run, nothing else stays."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, TESTBED, lab_state, needs_root, processes_mentioning, run_dirs

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root]
DATA = ROOT / "tests" / "data" / "realclients"
CLIENTS = ("gnutls", "nss", "openssl")
VARIANTS = ("signed", "fresh")
needs_clients = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("gnutls-cli", "tstclnt", "curl", "certutil")),
    reason="needs gnutls-bin, libnss3-tools and curl (make system installs them)")


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(str(p.relative_to(folder)).encode() + p.read_bytes()
                                   for p in sorted(folder.rglob("*")) if p.is_file())).hexdigest()


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("realclients")
    tree = work / "scenario"
    shutil.copytree(DATA, tree)
    shutil.copytree(ROOT / "scenarios" / "lab", tree / "lab")
    profile = tree / "profiles" / "signed-in"
    before = {"profile": _digest(profile)}
    proc = subprocess.run([*TESTBED, "run", str(tree / "tlsfetch-lab.yaml"), "--results",
                           str(work / "results")], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=600)
    (run,) = run_dirs(work / "results")
    return {"proc": proc, "run": run, "before": before, "profile": profile}


def _home(fetched: dict[str, Any], variant: str) -> Path:
    return fetched["run"] / "guests" / variant / "home"


@needs_clients
def test_the_run_completes_and_its_verdicts_pass(fetched):
    proc = fetched["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("PASS ") == 2


@needs_clients
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("client", CLIENTS)
def test_a_real_client_trusts_the_gateway_through_its_own_store(fetched, variant, client):
    home = _home(fetched, variant)
    outcomes = dict(line.split() for line in (home / "fetch.out").read_text().splitlines())
    log = (home / {"gnutls": "gnutls.log", "nss": "nss.log", "openssl": "curl.log"}[client])
    assert outcomes.get(client) == "0", (
        f"{client} in guest {variant} failed through the gateway (exit {outcomes.get(client)}):"
        f"\n{log.read_text(errors='replace')[-1500:]}")


@needs_clients
def test_every_connection_was_intercepted_none_failed(fetched):
    events = [json.loads(line) for line in
              (fetched["run"] / "capture" / "tls.jsonl").read_text().splitlines()]
    hellos = [e for e in events if e["event"] == "clienthello"]
    assert len(hellos) >= 2 * len(CLIENTS)
    assert all(e["passthrough"] is False for e in hellos)
    assert [e for e in events if e["event"] != "clienthello"] == []


@needs_clients
def test_the_canary_in_the_url_is_in_the_decrypted_flows(fetched):
    manifest = json.loads((fetched["run"] / "manifest.json").read_text())
    flows = (fetched["run"] / "capture" / "flows.mitm").read_bytes()
    assert f"c={manifest['canary']}".encode() in flows


@needs_clients
def test_the_named_profile_was_copied_in_and_a_fresh_home_has_none_of_it(fetched):
    assert (_home(fetched, "signed") / "profile-seen.out").read_text() == "signed in as alice\n"
    assert "No such file" in (_home(fetched, "fresh") / "profile-seen.out").read_text()
    assert not (_home(fetched, "fresh") / ".config" / "tlsfetch").exists()


@needs_clients
def test_the_scenarios_profile_folder_is_unchanged(fetched):
    assert _digest(fetched["profile"]) == fetched["before"]["profile"]


@needs_clients
@pytest.mark.parametrize("variant", VARIANTS)
def test_the_trust_record_of_each_guest_names_its_stores(fetched, variant):
    record = json.loads((fetched["run"] / "guests" / variant / "trust.json").read_text())
    installed = {s["store"] for s in record["stores"] if s["installed"]}
    assert {"system", "nss"} <= installed


@needs_clients
def test_nothing_of_the_lab_stays(fetched):
    tag = json.loads((fetched["run"] / "manifest.json").read_text())["lab"]["tag"]
    left = [name for names in lab_state().values() for name in names if tag in name]
    assert left == [], f"the run's lab objects stayed after teardown: {left}"
    assert processes_mentioning(str(fetched["run"])) == []
