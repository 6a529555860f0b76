"""The per-run set-up's one ssh command, run here: the receiver unpacks the archive and
hands the secrets to the set-up script on its standard input, never on a command line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from testbed.vagrant import guestsetup

ROOT = Path(__file__).resolve().parents[2]
FAKE_SETUP = """#!/bin/sh
# a stand-in for run-setup.sh: what it was given, where the test can see it
printf '%s\\n' "$@" > "$OUT/argv"
cat > "$OUT/stdin"
ls "$2" > "$OUT/upload"
"""


def archive(extra: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {"run-setup.sh": FAKE_SETUP.encode(), **extra}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def run_receiver(tmp_path: Path, payload: bytes, now: int = 1700000000) -> Path:
    """The command exactly as sent, with ``sudo`` a shim that runs its arguments and the
    upload folder inside tmp_path."""
    shims = tmp_path / "bin"
    shims.mkdir(exist_ok=True)
    (shims / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    (shims / "sudo").chmod(0o755)
    (shims / "python3").symlink_to(sys.executable) if not (shims / "python3").exists() else None
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    command = guestsetup.setup_command(now).replace(guestsetup.UPLOAD, str(tmp_path / "up"))
    res = subprocess.run(["sh", "-c", command], input=payload, capture_output=True, timeout=60,
                         env={"PATH": f"{shims}:/usr/bin:/bin", "OUT": str(out)})
    assert res.returncode == 0, res.stderr.decode()
    return out


@pytest.mark.parametrize("pem_count", [0, 1, 2])
@pytest.mark.parametrize("files", [{}, {"testbed/agent/x.py": b"print(1)\n"},
                                   {"builds/regular.yaml": b"build: regular\n" * 5000}])
def test_the_receiver_hands_the_secrets_to_the_setup_on_stdin(tmp_path, pem_count, files):
    pems = []
    for i in range(pem_count):
        pem = tmp_path / f"ca{i}.pem"
        pem.write_text(f"-----BEGIN CERTIFICATE-----\nCA{i}\n-----END CERTIFICATE-----\n")
        pems.append(pem)
    env = {"TESTBED_AGENT_TOKEN": "s3cret-token", "AGENT_LISTEN": "192.168.1.5:8765"}
    payload = guestsetup.setup_input(archive(files), pems, env)
    out = run_receiver(tmp_path, payload)
    assert (out / "argv").read_text().split() == ["1700000000", str(tmp_path / "up")]
    lines = (out / "stdin").read_text().splitlines()
    cut = lines.index("--")  # the separator is a line of its own, as run-setup.sh reads it
    assert "\n".join(lines[:cut]).count("BEGIN CERTIFICATE") == pem_count
    assert lines[cut + 1:] == ["TESTBED_AGENT_TOKEN=s3cret-token", "AGENT_LISTEN=192.168.1.5:8765"]
    listed = (out / "upload").read_text().split()
    assert "run-setup.sh" in listed
    for name in files:
        assert name.split("/")[0] in listed
    assert "s3cret" not in guestsetup.setup_command(1)  # never on a command line


def test_a_stale_upload_is_replaced(tmp_path):
    (tmp_path / "up" / "old").mkdir(parents=True)
    out = run_receiver(tmp_path, guestsetup.setup_input(archive({}), [], {"A": "1"}))
    assert (out / "upload").read_text().split() == ["run-setup.sh"]


def test_without_code_the_guests_own_setup_runs(tmp_path):
    """An empty archive: the code in the snapshot is current; run-setup.sh is the one the
    guest keeps in /opt/testbed (absent here, so the receiver fails saying so)."""
    command = guestsetup.setup_command(1).replace("sudo ", "")
    res = subprocess.run(["sh", "-c", command], input=guestsetup.setup_input(b"", [], {}),
                         capture_output=True, timeout=60)
    assert res.returncode != 0
    assert b"/opt/testbed/run-setup.sh" in res.stderr or os.path.exists(
        "/opt/testbed/run-setup.sh")


def test_the_code_archive_holds_the_agent_its_modules_and_the_builds():
    build = ROOT / "scenarios" / "lab" / "builds" / "regular.yaml"
    data = guestsetup.code_archive((("regular", build),))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = set(tar.getnames())
    for need in ("testbed/agent/server.py", "testbed/agent/launch.py", "testbed/agent/match.py",
                 "testbed/lab/refclient/app.py", "run-setup.sh", "trust-ca.sh",
                 "builds/regular.yaml", "vendor/pyautogui/__init__.py",
                 "vendor/pyscreeze/__init__.py", "vendor/pytweening/__init__.py"):
        assert need in names, need
    assert not [n for n in names if "__pycache__" in n]
    assert guestsetup.guest_build("regular") == "/opt/testbed/builds/regular.yaml"
    assert guestsetup.digest(data) == guestsetup.digest(guestsetup.code_archive(
        (("regular", build),)))
    assert guestsetup.digest(data) != guestsetup.digest(guestsetup.code_archive())


def test_without_code_run_setup_reads_the_secrets_directly(tmp_path):
    """The fast path: no archive, no receiver; the guest's own run-setup.sh gets the CAs and
    the environment on stdin, the same as from the receiver."""
    fake = tmp_path / "run-setup.sh"
    fake.write_text(FAKE_SETUP.replace('ls "$2" > "$OUT/upload"\n', ""))
    out = tmp_path / "out"
    out.mkdir()
    command = guestsetup.setup_command(42, code=False)
    assert command.startswith("sudo sh /opt/testbed/run-setup.sh 42 ") and "python3" not in command
    payload = guestsetup.setup_input(None, [], {"TESTBED_AGENT_TOKEN": "tok"})
    assert payload == b"--\nTESTBED_AGENT_TOKEN=tok\n"
    res = subprocess.run(["sh", str(fake), "42", str(tmp_path / "up")], input=payload,
                         capture_output=True, timeout=30, env={"OUT": str(out), "PATH": "/bin"})
    assert res.returncode == 0, res.stderr
    assert (out / "stdin").read_bytes() == payload
