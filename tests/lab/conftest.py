"""Helpers for tests that run the embedded lab for real (root only)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from testbed.lab.refclient.network import BuildProfile

from . import tlskit

ROOT = Path(__file__).resolve().parents[2]
TESTBED = [sys.executable, "-m", "testbed"]
VARIANTS = ("regular", "tom-en", "tom-zh", "control")
SECRET = "s3cret-Passw0rd-for-tests"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("Xvfb") is None or shutil.which("tcpdump") is None,
    reason="the lab needs root, Xvfb and tcpdump (make setup installs them; run as root)",
)


def run_tag(run: Path) -> str:
    """The lab tag of a run (its namespaces are tbed-<tag>-*, its links tb<tag>m<i>)."""
    return str(json.loads((run / "manifest.json").read_text())["lab"]["tag"])


def run_objects(tag: str) -> list[str]:
    """What of run ``tag`` exists now: namespaces, their processes, root links."""
    from testbed.lab.netns import run_objects as objects

    return objects(tag)


def processes_mentioning(text: str) -> list[str]:
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            out.append(f"{proc.name}: {cmd.strip()}")
    return out


def run_dirs(results: Path) -> list[Path]:
    return sorted(p.parent for p in results.glob("*/*/manifest.json"))


def wait_for_phase(results: Path, phase: str, timeout: float = 60, every: float = 0.1) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in run_dirs(results):
            try:
                m = json.loads((run / "manifest.json").read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if phase in m.get("phases", {}):
                return run
        time.sleep(every)
    raise AssertionError(f"no run reached phase {phase!r} within {timeout} s")


def copy_scenarios(dst: Path) -> Path:
    shutil.copytree(ROOT / "scenarios", dst / "scenarios")
    return dst / "scenarios"


def profile_urls(profile: BuildProfile) -> list[str]:
    """Every URL a build profile sends the client to."""
    urls = [*profile.launch, *profile.login, profile.relay, profile.media_relay]
    if profile.surveillance:
        urls += [profile.surveillance.keywords, profile.surveillance.upload]
    return [u for u in urls if u]


@pytest.fixture(scope="session")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of the seed scenario, shared by the tests that read its results."""
    results = tmp_path_factory.mktemp("results")
    env = dict(os.environ, TESTBED_PASSWORD_REGULAR=SECRET)
    proc = subprocess.run([*TESTBED, "run", "scenarios/skype-2013-lab.yaml",
                           "--results", str(results)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    (run,) = run_dirs(results)
    return {"proc": proc, "run": run}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a server certificate it signed (tlskit), once per module."""
    folder = tmp_path_factory.mktemp("pki")
    ca, ca_key = tlskit.make_ca(folder)
    cert, key = tlskit.make_server_cert(folder, ca, ca_key)
    return {"ca": ca, "cert": cert, "key": key}
