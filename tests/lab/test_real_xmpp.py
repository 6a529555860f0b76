"""A real XMPP client through its GUI, for real (root): scenarios/xmpp-federation-lab.yaml runs
Debian's Pidgin in three guests against two federating prosody servers (DE, CN). alice's
message to bob (on the Chinese server) is found decrypted on bob's stream from China; her
message to carol (on her own server) never touches China; both show on the receivers' screens.
Every TLS connection was intercepted (Pidgin read the guest's system store), and nothing of
the run is left on the host."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from .conftest import ROOT, TESTBED, needs_root, processes_mentioning, run_dirs, run_objects

SCENARIO = ROOT / "scenarios" / "xmpp-federation-lab.yaml"

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(shutil.which("pidgin") is None or shutil.which("prosody") is None,
                                 reason="needs pidgin and prosody (make system installs them)")]


@pytest.fixture(scope="module")
def xmpp_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    results = tmp_path_factory.mktemp("results")
    proc = subprocess.run([*TESTBED, "run", str(SCENARIO), "--results", str(results)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    (run,) = run_dirs(results)
    verdicts = json.loads((run / "verdicts.json").read_text())["verdicts"]
    return {"proc": proc, "run": run, "verdicts": {v["id"]: v for v in verdicts},
            "tag": json.loads((run / "manifest.json").read_text())["lab"]["tag"]}


def test_the_run_passes_and_prints_the_table(xmpp_run):
    proc = xmpp_run["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "xmpp.cn.lab.example" in proc.stdout and "xmpp.de.lab.example" in proc.stdout


@pytest.mark.parametrize("claim", [
    "alice-reaches-country-DE", "alice-never_reaches-country-CN", "bob-reaches-country-CN",
    "chat-to-chinese-server-passes-through-china", "chat-on-own-server-stays-out-of-china",
    "bob-sees-the-message", "carol-sees-the-message"])
def test_each_claim_holds(xmpp_run, claim):
    verdict = xmpp_run["verdicts"][claim]
    assert verdict["status"] == "pass", verdict["reason"]


def test_the_path_to_china_rests_on_the_canary_decrypted_on_bobs_stream(xmpp_run):
    verdict = xmpp_run["verdicts"]["chat-to-chinese-server-passes-through-china"]
    assert "canary-decrypted evidence on 203.0.113.82 from bob" in verdict["reason"], verdict


@pytest.mark.parametrize("variant", ["alice", "bob", "carol"])
def test_each_client_was_intercepted_and_left_its_screens(xmpp_run, variant):
    run = xmpp_run["run"]
    guest = {"alice": "10.77.0.10", "bob": "10.77.0.11", "carol": "10.77.0.12"}
    outcomes = [json.loads(line) for line in (run / "capture" / "tls.jsonl").read_text()
                .splitlines() if '"outcome"' in line]
    assert outcomes and {o["outcome"] for o in outcomes} == {"intercepted"}, outcomes
    assert len(outcomes) == 3 and guest[variant] in {o["client"] for o in outcomes}
    shots = {p.name for p in (run / "screenshots" / variant).iterdir()}
    assert "launch.png" in shots
    assert ("chat_send.png" if variant == "alice" else "chat_wait.png") in shots


def test_the_servers_federated_and_kept_their_logs(xmpp_run):
    folder = xmpp_run["run"] / "lab" / "daemons"
    de = (folder / "xmpp.de.lab.example" / "logs" / "prosody.log").read_text()
    cn = (folder / "xmpp.cn.lab.example" / "logs" / "prosody.log").read_text()
    assert "Authenticated as alice@xmpp.de.lab.example" in de, de
    assert "Authenticated as bob@xmpp.cn.lab.example" in cn, cn
    link = "s2s connection xmpp.de.lab.example->xmpp.cn.lab.example complete"
    assert f"Outgoing {link}" in de and f"Incoming {link}" in cn, de + cn


def test_nothing_of_the_run_is_left(xmpp_run):
    assert run_objects(xmpp_run["tag"]) == []
    assert processes_mentioning(str(xmpp_run["run"])) == []
