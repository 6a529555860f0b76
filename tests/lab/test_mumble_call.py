"""A real voice client in CI (issue 12 §5): `testbed run scenarios/mumble-call-lab.yaml`, for
real (root). Four guests run Debian's Mumble, driven only by its app profile and reference
images, two on Debian's mumble-server in China, two on one in Germany; each guest has its own
sound server (a null sink and source) and transmits continuously. The servers relay each
pair's voice (UDP both ways), the verdicts put the Chinese call's media in China and the German
call's out of it, and nothing of the run stays on the host."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from testbed.verdicts.call import MIN_PACKETS

from .conftest import ROOT, TESTBED, needs_root, processes_mentioning, run_dirs, run_objects

SCENARIO = ROOT / "scenarios" / "mumble-call-lab.yaml"
VARIANTS = ("cn-a", "cn-b", "de-a", "de-b")
SERVER = {"cn-a": "203.0.113.64", "cn-b": "203.0.113.64",
          "de-a": "198.51.100.64", "de-b": "198.51.100.64"}

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(any(shutil.which(p) is None
                                     for p in ("mumble", "murmurd", "pulseaudio")),
                                 reason="needs mumble, mumble-server and pulseaudio "
                                        "(make system installs them)")]


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    results = tmp_path_factory.mktemp("results")
    proc = subprocess.run([*TESTBED, "run", str(SCENARIO), "--results", str(results)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    (run,) = run_dirs(results)
    return {"proc": proc, "run": run,
            "tag": json.loads((run / "manifest.json").read_text())["lab"]["tag"]}


def test_the_run_passes_every_expectation(lab_run):
    proc = lab_run["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdicts = json.loads((lab_run["run"] / "verdicts.json").read_text())["verdicts"]
    assert {v["id"]: v["status"] for v in verdicts} == {
        "call-on-china-server-goes-through-china": "pass",
        "call-on-german-server-stays-out-of-china": "pass",
        "call-on-german-server-goes-through-germany": "pass",
        "de-a-never_reaches-country-CN": "pass",
        "de-b-never_reaches-country-CN": "pass"}, proc.stdout
    assert "Verdicts" in proc.stdout and "voice.cn.lab.example" in proc.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_user_sent_and_received_voice_through_its_server(lab_run, variant):
    rows = json.loads((lab_run["run"] / "analysis" / "endpoints.json").read_text())["endpoints"]
    (udp,) = [r for r in rows if r["variant"] == variant and r["proto"] == "udp"]
    assert udp["address"] == SERVER[variant] and udp["port"] == 64738, udp
    # the peer's voice came back, relayed by the server: a call, not a monologue
    assert udp["packets_out"] >= MIN_PACKETS and udp["packets_in"] >= MIN_PACKETS, udp


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_real_apps_screens_and_profile_are_kept(lab_run, variant):
    run = lab_run["run"]
    assert {p.name for p in (run / "screenshots" / variant).glob("*.png")} >= {
        "launch.png", "call.png"}
    conf = run / "guests" / variant / "home" / ".config" / "Mumble" / "Mumble.conf"
    assert "transmit=0" in conf.read_text()


@pytest.mark.parametrize("server", ["voice.cn.lab.example", "voice.de.lab.example"])
def test_each_server_authenticated_its_two_users(lab_run, server):
    log = (lab_run["run"] / "lab" / "daemons" / server / "daemon.log").read_text()
    assert log.count("Authenticated") >= 2, log[-2000:]


def test_nothing_of_the_run_is_left(lab_run):
    assert run_objects(lab_run["tag"]) == []
    assert processes_mentioning(str(lab_run["run"])) == []
