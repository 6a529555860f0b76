"""A real Vagrant VM on this machine: build the Debian 12 box, up, ssh, snapshot, restore,
destroy -- on an isolated libvirt network only, leaving nothing behind.

qemu runs in software emulation (TCG, libvirt domain type "qemu"): no KVM needed.
Everything the test makes is named ``tbv<hex>`` (domain prefix, network, bridge, storage
pool) and vagrant runs with its own VAGRANT_HOME, so the test touches no other VM, box or
network and two runs cannot collide. Timings are printed (``pytest -s``) and recorded as
junit properties.

Needs (Debian): vagrant vagrant-libvirt libvirt-daemon-system qemu-system-x86 qemu-utils
dnsmasq-base debootstrap grub-pc-bin fdisk e2fsprogs. Set TESTBED_VM_TESTS=0 to skip.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from testbed._errors import VmError
from testbed.vagrant.machinery import NOT_CREATED, RUNNING, Machinery

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "vms" / "box" / "build-debian-box.sh"
CACHE = Path(os.environ.get("TESTBED_BOX_CACHE", "/var/cache/testbed/boxes"))
URI = "qemu:///system"
BOX = "testbed/debian12"
TOOLS = (
    "vagrant",
    "virsh",
    "libvirtd",
    "virtlogd",
    "qemu-system-x86_64",
    "qemu-img",
    "debootstrap",
    "grub-mkimage",
    "sfdisk",
    "mkfs.ext4",
    "dnsmasq",
)


def _skip_reason() -> str | None:
    if os.environ.get("TESTBED_VM_TESTS") == "0":
        return "TESTBED_VM_TESTS=0"
    if os.geteuid() != 0:
        return "needs root (libvirt system connection, debootstrap)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return (
            "missing " + ", ".join(missing) + ": apt-get install -y vagrant vagrant-libvirt "
            "libvirt-daemon-system qemu-system-x86 qemu-utils dnsmasq-base debootstrap "
            "grub-pc-bin fdisk e2fsprogs"
        )
    if not os.path.exists("/dev/kvm") and not shutil.which("qemu-system-x86_64"):
        return "no /dev/kvm and no qemu"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.e2e,
    pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason())),
]


def run(
    cmd: list[str], *, timeout: float = 120, check: bool = True, **kw
) -> subprocess.CompletedProcess:
    """Run a command; on failure raise with its whole output (vagrant's own words)."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} -> exit {p.returncode}\n--- stdout\n{p.stdout[-6000:]}"
            f"\n--- stderr\n{p.stderr[-6000:]}"
        )
    return p


def virsh(*args: str, check: bool = True, timeout: float = 60) -> str:
    return run(["virsh", "-q", "-c", URI, *args], check=check, timeout=timeout).stdout


def names(*args: str) -> set[str]:
    return {line.strip() for line in virsh(*args, "--name").splitlines() if line.strip()}


def _pid(path: str) -> int | None:
    try:
        pid = int(Path(path).read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def ensure_libvirtd() -> list[int]:
    """Start virtlogd and libvirtd by hand (no systemd here) if they are not running.
    Returns the pids this test started, to stop them afterwards."""
    if run(["virsh", "-c", URI, "version"], check=False, timeout=20).returncode == 0:
        return []
    started = []
    for daemon, pidfile in (("virtlogd", "/run/virtlogd.pid"), ("libvirtd", "/run/libvirtd.pid")):
        if _pid(pidfile) is None:
            run([daemon, "-d"], timeout=30)
            for _ in range(50):
                if (pid := _pid(pidfile)) is not None:
                    started.append(pid)
                    break
                time.sleep(0.1)
    for _ in range(100):
        if run(["virsh", "-c", URI, "version"], check=False, timeout=20).returncode == 0:
            return started
        time.sleep(0.2)
    raise AssertionError("libvirtd did not answer on " + URI)


def free_subnet() -> ipaddress.IPv4Network:
    """A 192.168.x.0/24 that neither the host's routes nor another libvirt network uses."""
    used = run(["ip", "-4", "route", "show"]).stdout
    for name in names("net-list", "--all"):
        used += virsh("net-dumpxml", name, check=False)
    for x in range(123, 250):
        net = ipaddress.IPv4Network(f"192.168.{x}.0/24")
        if f"192.168.{x}." not in used:
            return net
    raise AssertionError("no free 192.168.x.0/24 for the isolated network")


def assert_isolated(net: str) -> None:
    """The network has no <forward> (libvirt's "isolated" mode): guests on it cannot
    reach the host's real network or the internet."""
    xml = ET.fromstring(virsh("net-dumpxml", net))
    assert xml.find("forward") is None, f"network {net} forwards: {ET.tostring(xml, 'unicode')}"
    assert net in names("net-list"), f"network {net} is not active"


def test_vagrant_box_end_to_end(tmp_path, record_property):
    timings: dict[str, float] = {}

    def stage(name: str, t0: float) -> None:
        timings[name] = round(time.monotonic() - t0, 1)
        print(f"[vagrant-box] {name}: {timings[name]} s", flush=True)
        record_property(f"seconds_{name}", timings[name])

    tag = "tbv" + uuid.uuid4().hex[:6]  # bridge names must be <= 15 characters
    net_name = pool_name = tag
    pool_dir = Path("/var/lib/libvirt/images") / tag
    workdir = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=tmp_path))
    env = {
        **os.environ,
        "VAGRANT_HOME": str(workdir / "vagrant.d"),
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1",
        "VAGRANT_DEFAULT_PROVIDER": "libvirt",
        "VAGRANT_NO_COLOR": "1",
        "VAGRANT_SUPPRESS_PLUGIN_WARNINGS": "1",
    }
    project = workdir / "project"
    project.mkdir()

    def vagrant(*args: str, timeout: float = 300, check: bool = True) -> str:
        return run(["vagrant", *args], cwd=project, env=env, timeout=timeout, check=check).stdout

    started = ensure_libvirtd()
    try:
        nets_before = names("net-list")  # active networks
        domains_before = names("list", "--all")
        t_all = time.monotonic()
        try:
            # 1. the box (cached in /var/cache/testbed/boxes between runs)
            t0 = time.monotonic()
            box = workdir / "debian12.box"
            p = run(["bash", str(BUILD), str(box)], timeout=1200)
            stage("box_build" if "cached box" not in p.stderr else "box_build_cached", t0)
            print(p.stderr.strip(), flush=True)
            t0 = time.monotonic()
            vagrant("box", "add", "--force", "--name", BOX, str(box))
            stage("box_add", t0)

            # 2. isolated management network (no <forward>) and a storage pool of our own
            subnet = free_subnet()
            host_ip = subnet[1]
            net_xml = workdir / "net.xml"
            net_xml.write_text(
                f"<network><name>{net_name}</name><bridge name='{tag}' stp='off' delay='0'/>"
                f"<ip address='{host_ip}' netmask='{subnet.netmask}'><dhcp>"
                f"<range start='{subnet[100]}' end='{subnet[200]}'/>"
                f"</dhcp></ip></network>"
            )
            virsh("net-define", str(net_xml))
            virsh("net-start", net_name)
            virsh("pool-define-as", pool_name, "dir", "--target", str(pool_dir))
            virsh("pool-build", pool_name)
            virsh("pool-start", pool_name)

            (project / "Vagrantfile").write_text(f"""
    Vagrant.configure("2") do |config|
      config.vm.box = "{BOX}"
      config.vm.box_check_update = false
      config.vm.boot_timeout = 900
      config.vm.synced_folder ".", "/vagrant", disabled: true
      config.vm.provider :libvirt do |l|
        l.uri = "{URI}"
        l.driver = "qemu"                       # TCG: KVM cannot run guests here
        l.cpu_mode = "custom"
        l.cpu_model = "qemu64"
        l.memory = 512
        l.cpus = 1
        l.default_prefix = "{tag}-"
        l.storage_pool_name = "{pool_name}"
        l.management_network_name = "{net_name}"
        l.management_network_address = "{subnet}"
        l.management_network_mode = "none"      # isolated, should vagrant-libvirt ever create it
        l.graphics_type = "none"
        l.video_type = "none"
      end
    end
    """)
            # Network safety, checked before any guest exists.
            assert_isolated(net_name)
            assert names("list", "--all") == domains_before

            # 3. boot to SSH
            t0 = time.monotonic()
            machines = Machinery(project, env, workdir / "vagrant.log")
            machines.up("default", provider="libvirt", provision=False)
            assert machines.state("default") == RUNNING
            stage("up_to_ssh", t0)
            domains = names("list", "--all") - domains_before
            assert len(domains) == 1 and next(iter(domains)).startswith(tag), domains
            domain = next(iter(domains))
            # the guest sits on our isolated network only; no other network was started
            ifaces = virsh("domiflist", domain)
            assert net_name in ifaces and all(
                net_name in line for line in ifaces.splitlines() if line.strip()
            ), ifaces
            for new_net in names("net-list") - nets_before:  # none forwards to the host
                assert_isolated(new_net)
            assert_isolated(net_name)

            t0 = time.monotonic()
            out = machines.ssh(
                "default", "uname -a; ip -4 -o addr show; ip route; sudo -n true && echo SUDO_OK"
            )
            stage("ssh_command", t0)
            print(out, flush=True)
            assert re.search(r"^Linux \S+ 6\.1\.\S+.* x86_64 GNU/Linux", out, re.M), out
            assert "SUDO_OK" in out
            addrs = [
                ipaddress.ip_address(a) for a in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
            ]
            assert any(a in subnet for a in addrs), out
            assert not re.search(r"^default ", out, re.M), "the guest has a default route: " + out

            # 4. snapshot, change the guest, restore: the change is gone
            t0 = time.monotonic()
            machines.snapshot_save("default", "clean")  # this machine's only
            stage("snapshot_save", t0)
            assert machines.snapshots("default") == ["clean"]
            machines.ssh("default", "touch /home/vagrant/after-snapshot && sync")
            t0 = time.monotonic()
            machines.snapshot_restore("default", "clean")
            stage("snapshot_restore", t0)
            t0 = time.monotonic()
            out = machines.ssh(
                "default", "test -e /home/vagrant/after-snapshot && echo STILL_THERE || echo GONE"
            )
            stage("ssh_after_restore", t0)
            assert "GONE" in out, out
            # a failing command is an error with vagrant's own output (python-vagrant's is not)
            with pytest.raises(VmError, match="vagrant ssh default failed"):
                machines.ssh("default", "exit 3")
            machines.snapshot_delete("default", "clean")

            # 5. destroy
            t0 = time.monotonic()
            machines.destroy()
            assert machines.state("default") == NOT_CREATED
            stage("destroy", t0)
        finally:
            t0 = time.monotonic()
            _teardown(vagrant, tag, net_name, pool_name, pool_dir, domains_before, workdir)
            stage("teardown", t0)
            timings["total"] = round(time.monotonic() - t_all, 1)
            print(f"[vagrant-box] timings: {timings}", flush=True)

        # 6. nothing of ours remains
        assert not [d for d in names("list", "--all") if d.startswith(tag)]
        assert net_name not in names("net-list", "--all")
        assert pool_name not in names("pool-list", "--all")
        if "default" in names("pool-list"):
            assert tag not in virsh("vol-list", "default")
        assert not pool_dir.exists() and not workdir.exists()
        assert not _qemu_pids(tag), "qemu processes left: " + str(_qemu_pids(tag))
        assert not Path(f"/sys/class/net/{tag}").exists(), "bridge left"
    finally:
        _stop_daemons(started)


def _qemu_pids(tag: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "qemu-system" in cmd and tag in cmd:
                pids.append(int(d.name))
    return pids


def _teardown(vagrant, tag, net_name, pool_name, pool_dir, domains_before, workdir) -> None:
    """Best effort, every step independent: the VM, its snapshots, volumes, pool,
    network, vagrant's home."""

    def quiet(fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except Exception as e:
            print(f"[vagrant-box] teardown: {e}", flush=True)

    if (workdir / "project" / ".vagrant" / "machines").exists():
        quiet(vagrant, "destroy", "-f", timeout=300, check=False)
    for dom in names("list", "--all") - domains_before:
        if dom.startswith(tag):
            quiet(virsh, "destroy", dom, check=False)
            for snap in virsh("snapshot-list", dom, "--name", check=False).split():
                quiet(virsh, "snapshot-delete", dom, snap, check=False)
            quiet(virsh, "undefine", dom, "--snapshots-metadata", "--nvram", check=False)
    for pid in _qemu_pids(tag):  # qemu of our domain only, by pid
        quiet(os.kill, pid, signal.SIGKILL)
    if pool_name in names("pool-list", "--all"):
        for vol in virsh("vol-list", pool_name, check=False).split("\n"):
            if vol.split():
                quiet(virsh, "vol-delete", "--pool", pool_name, vol.split()[0], check=False)
        quiet(virsh, "pool-destroy", pool_name, check=False)
        quiet(virsh, "pool-delete", pool_name, check=False)
        quiet(virsh, "pool-undefine", pool_name, check=False)
    shutil.rmtree(pool_dir, ignore_errors=True)
    if net_name in names("net-list", "--all"):
        quiet(virsh, "net-destroy", net_name, check=False)
        quiet(virsh, "net-undefine", net_name, check=False)
    shutil.rmtree(workdir, ignore_errors=True)  # VAGRANT_HOME with the box, the project


def _stop_daemons(started: list[int]) -> None:
    """Stop libvirtd, then virtlogd, if (and only if) this test started them."""
    for pid in reversed(started):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            continue
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists() or "Z" in _proc_state(pid):
                break
            time.sleep(0.1)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"
