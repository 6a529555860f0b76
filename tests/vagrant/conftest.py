"""Real VMs on this machine: libvirtd started by the tests (no systemd here), the Debian 12
box built from Debian's packages and cached between runs, vagrant with a home of its own.

qemu runs in software emulation (libvirt domain type "qemu"): KVM cannot run guests here.
Needs (Debian): vagrant vagrant-libvirt libvirt-daemon-system qemu-system-x86 qemu-utils
dnsmasq-base debootstrap grub-pc-bin fdisk e2fsprogs (make setup installs them).
Set TESTBED_VM_TESTS=0 to skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "vms" / "box" / "build-debian-box.sh"
URI = "qemu:///system"
TOOLS = ("vagrant", "virsh", "libvirtd", "virtlogd", "qemu-system-x86_64", "qemu-img",
         "debootstrap", "grub-mkimage", "sfdisk", "mkfs.ext4", "dnsmasq", "tcpdump")


def vm_skip_reason() -> str | None:
    if os.environ.get("TESTBED_VM_TESTS") == "0":
        return "TESTBED_VM_TESTS=0"
    if os.geteuid() != 0:
        return "needs root (libvirt system connection, debootstrap, namespaces)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return ("missing " + ", ".join(missing) + ": apt-get install -y vagrant vagrant-libvirt "
                "libvirt-daemon-system qemu-system-x86 qemu-utils dnsmasq-base debootstrap "
                "grub-pc-bin fdisk e2fsprogs tcpdump")
    return None


needs_vms = pytest.mark.skipif(vm_skip_reason() is not None, reason=str(vm_skip_reason()))


def run(cmd: list[str], *, timeout: float = 120, check: bool = True,
        **kw) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    """Run a command; on failure raise with its whole output."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> exit {p.returncode}\n--- stdout\n"
                             f"{p.stdout[-6000:]}\n--- stderr\n{p.stderr[-6000:]}")
    return p


def virsh(*args: str, check: bool = True) -> str:
    return run(["virsh", "-q", "-c", URI, *args], check=check, timeout=60).stdout


def names(*args: str) -> set[str]:
    return {line.strip() for line in virsh(*args, "--name").splitlines() if line.strip()}


def _pid(path: str) -> int | None:
    try:
        pid = int(Path(path).read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


@pytest.fixture(scope="session")
def libvirtd() -> Iterator[None]:
    """libvirtd and virtlogd, started by hand if they are not running, and stopped again
    afterwards if (and only if) this fixture started them."""
    started: list[int] = []
    if run(["virsh", "-c", URI, "version"], check=False, timeout=20).returncode != 0:
        for daemon, pidfile in (("virtlogd", "/run/virtlogd.pid"),
                                ("libvirtd", "/run/libvirtd.pid")):
            if _pid(pidfile) is None:
                run([daemon, "-d"], timeout=30)
                for _ in range(50):
                    if (pid := _pid(pidfile)) is not None:
                        started.append(pid)
                        break
                    time.sleep(0.1)
        for _ in range(100):
            if run(["virsh", "-c", URI, "version"], check=False, timeout=20).returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("libvirtd did not answer on " + URI)
    yield
    for pid in reversed(started):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            continue
        for _ in range(100):
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                break
            if state == "Z":
                break
            time.sleep(0.1)


@pytest.fixture(scope="session")
def vagrant_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A vagrant home of the tests' own with the testbed/debian12 box in it (the box is built
    once and cached in /var/cache/testbed/boxes; rebuilt only when the build script changes)."""
    home = tmp_path_factory.mktemp("vagrant.d")
    box = home / "debian12.box"
    t0 = time.monotonic()
    p = run(["bash", str(BUILD), str(box)], timeout=1500)
    print(f"[vagrant] box {'cached' if 'cached box' in p.stderr else 'built'} in "
          f"{time.monotonic() - t0:.0f} s\n{p.stderr.strip()}", flush=True)
    env = {**os.environ, "VAGRANT_HOME": str(home), "VAGRANT_CHECKPOINT_DISABLE": "1"}
    run(["vagrant", "box", "add", "--force", "--name", "testbed/debian12", str(box)], env=env,
        timeout=300)
    box.unlink()
    yield home
    shutil.rmtree(home, ignore_errors=True)
