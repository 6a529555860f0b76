"""Real TLS clients nobody here wrote, in lab guests, through the gateway's interception
(mitmdump), for real: Debian's GnuTLS (``gnutls-cli``), NSS (``tstclnt`` with the guest's
``~/.pki/nssdb``) and OpenSSL (``curl``) fetch a lab HTTPS server, each trusting the gateway's
CA from the store it reads. The app (tests/data/realclients/apps/tlsfetch.yaml) is driven by
an app profile only: its launch command uses the step's ``{host}`` and ``{url}``. One guest
starts from a signed-in profile the scenario names, the other from a fresh home; both homes
are kept in the run, nothing else stays. A third guest's TLS is passed through unopened by
the scenario's rule (``tls: passthrough``): its outcome says so, and its clients meet the lab
server's own certificate."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    ROOT,
    TESTBED,
    needs_root,
    processes_mentioning,
    run_dirs,
    run_objects,
    run_tag,
)

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root]
DATA = ROOT / "tests" / "data" / "realclients"
CLIENTS = ("gnutls", "nss", "openssl")
VARIANTS = ("signed", "fresh")  # intercepted; "passed" is passed through
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
    assert proc.stdout.count("PASS ") == 3


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


def _tls(fetched: dict[str, Any]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    guests = json.loads((fetched["run"] / "manifest.json").read_text())["guests"]
    events = [json.loads(line) for line in
              (fetched["run"] / "capture" / "tls.jsonl").read_text().splitlines()]
    return {address: variant for variant, address in guests.items()}, events


@needs_clients
def test_each_guests_tls_outcome_is_intercepted_or_passed_through_by_the_rule(fetched):
    variant_of, events = _tls(fetched)
    outcomes = {variant_of[e["client"]]: e["outcome"] for e in events
                if e["event"] == "outcome"}
    assert outcomes == {"signed": "intercepted", "fresh": "intercepted",
                        "passed": "passthrough"}
    assert [e for e in events if e["event"] == "tls_failed"] == []


@needs_clients
@pytest.mark.parametrize("variant, passed", [("signed", False), ("fresh", False),
                                             ("passed", True)])
def test_every_client_hello_of_a_guest_follows_its_tls_rule(fetched, variant, passed):
    variant_of, events = _tls(fetched)
    hellos = [e for e in events
              if e["event"] == "clienthello" and variant_of.get(e["client"]) == variant]
    assert len(hellos) == len(CLIENTS)
    assert {(e["passthrough"], e.get("why")) for e in hellos} == (
        {(True, "rule")} if passed else {(False, None)})


@needs_clients
@pytest.mark.parametrize("client", CLIENTS)
def test_a_passed_through_client_meets_the_servers_own_certificate(fetched, client):
    outcomes = dict(line.split() for line in
                    (_home(fetched, "passed") / "fetch.out").read_text().splitlines())
    assert outcomes[client] != "0", (
        f"{client} trusted the lab server's own certificate: the guest trusts more than "
        f"the gateway's CA")


@needs_clients
def test_the_canary_in_the_url_is_in_the_decrypted_flows(fetched):
    manifest = json.loads((fetched["run"] / "manifest.json").read_text())
    flows = (fetched["run"] / "capture" / "flows.mitm").read_bytes()
    assert f"c={manifest['canary']}".encode() in flows
    assert f"p={manifest['canary']}".encode() not in flows  # passed through: never decrypted


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
    left = run_objects(run_tag(fetched["run"]))
    assert left == [], f"the run's lab objects stayed after teardown: {left}"
    assert processes_mentioning(str(fetched["run"])) == []
