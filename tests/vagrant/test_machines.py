"""The scenario drives the Vagrantfile through a machine list; the Vagrantfile accepts it."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

import pytest

from testbed.provider.gateway import GATEWAY_IP, GUEST_NET, guest_address
from testbed.scenario import load_scenario
from testbed.vagrant.machines import Names, machine_list, write_machine_list
from tests.vagrant.conftest import needs_vms

ROOT = Path(__file__).resolve().parents[2]


def _spec(name: str = "skype-2013.yaml", folder: Path = Path("/tmp/machines")) -> dict:
    return machine_list(load_scenario(ROOT / "scenarios" / name), Names.of(folder),
                        "172.28.0.0/24", "qemu")


def test_machine_list_from_the_real_study():
    spec = _spec()
    assert spec["hypervisor"] == "libvirt"
    assert [g["name"] for g in spec["guests"]] == ["regular", "tom-en", "tom-zh"]
    exp = ipaddress.ip_network(spec["experiment_network"]["cidr"])
    assert exp == ipaddress.ip_network(GUEST_NET)
    assert spec["experiment_network"]["gateway_ip"] == GATEWAY_IP
    addresses = [g["experiment_ip"] for g in spec["guests"]]
    assert len(set(addresses)) == 3 and all(ipaddress.ip_address(a) in exp for a in addresses)
    assert GATEWAY_IP not in addresses
    assert len({g["experiment_mac"] for g in spec["guests"]}) == 3
    assert spec["management_network"]["host_ip"] == "172.28.0.1"
    regular = spec["guests"][0]
    assert regular["os"] == "windows" and regular["memory"] == 4096
    assert regular["installer"]["file"] == "SkypeSetupFull-6.3.0.105.exe"
    assert regular["installer"]["args"] == ["/VERYSILENT", "/SP-", "/NOLAUNCH"]


def test_names_are_per_folder_and_fit_linux_limits(tmp_path):
    a, b = Names.of(tmp_path / "a"), Names.of(tmp_path / "b")
    assert a != b and a == Names.of(tmp_path / "a")
    for n in (a, b):
        assert all(len(x) <= 15 for x in (n.network, n.bridge, n.uplink, n.pool))
        assert n.bridge.startswith("tbx") and n.mac(0) != n.mac(1)
    spec = _spec(folder=tmp_path / "a")
    assert spec["libvirt"] == {"driver": "qemu", "prefix": a.prefix, "pool": a.pool}
    assert spec["experiment_network"]["bridge"] == a.bridge


@needs_vms  # vagrant-libvirt asks libvirt whether the experiment bridge exists
@pytest.mark.parametrize("name,communicator", [
    ("skype-2013.yaml", None),            # Windows guests as they are: winssh
    ("skype-2013-vm.yaml", None),         # one Linux VM (the other client is a lab guest)
    ("vagrant-linux-lab.yaml", None),
    ("skype-2013.yaml", "winrm"),         # only where vagrant has the WinRM gems
])
def test_vagrantfile_accepts_the_machine_list(tmp_path, name, communicator, libvirtd):
    from testbed.vagrant.preflight import communicator_check

    data = _spec(name, tmp_path)
    if communicator:
        for g in data["guests"]:
            g["communicator"] = communicator
    # vagrant-libvirt checks that the experiment bridge exists (the provider makes it)
    bridge = data["experiment_network"]["bridge"]
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    try:
        out = _validate(data, tmp_path / "machines.json", tmp_path)
    finally:
        subprocess.run(["ip", "link", "delete", bridge], check=True)
    usable = communicator is None or communicator_check(communicator).ok
    assert ("Vagrantfile validated successfully" in out) == usable, out  # as preflight says


def _validate(data: dict, spec: Path, tmp_path: Path) -> str:
    write_machine_list(data, spec)
    (tmp_path / "guest-files").mkdir(exist_ok=True)  # (testbed fills it for Windows guests)
    out = subprocess.run(["vagrant", "validate"], cwd=ROOT / "vms", capture_output=True,
                         text=True, timeout=300, env={"TESTBED_MACHINES": str(spec),
                                                     "TESTBED_GUEST_FILES":
                                                         str(tmp_path / "guest-files"),
                                                     "PATH": "/usr/bin:/bin:/usr/sbin",
                                                     "HOME": str(tmp_path)})
    return out.stdout + out.stderr


@pytest.mark.parametrize("os_name,given,expected", [
    ("linux", None, "ssh"), ("windows", None, "winssh"), ("windows", "winrm", "winrm"),
    ("windows", "winssh", "winssh"),
])
def test_each_guest_says_how_vagrant_reaches_it(os_name, given, expected):
    from testbed.vagrant.machines import communicator

    vm = {"box": "b", "os": os_name, **({"communicator": given} if given else {})}
    assert communicator(vm) == expected


def test_a_mixed_scenario_lists_its_vms_only_at_their_scenario_addresses():
    spec = _spec("skype-2013-vm.yaml")
    assert [g["name"] for g in spec["guests"]] == ["regular"]
    (regular,) = spec["guests"]
    assert regular["experiment_ip"] == guest_address(0)  # tom-zh, a lab guest, has index 1
    assert regular["communicator"] == "ssh" and regular["memory"] == 768
    assert all(g["communicator"] == "winssh" for g in _spec()["guests"])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_lab_cleanup_removes_the_bridge_of_a_killed_vm_run():
    import sys

    bridge = Names.of(Path("/nonexistent/killed-run")).bridge
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    try:
        # only this bridge's run (--tag): other lab runs may go on beside the suite
        out = subprocess.run([sys.executable, "-m", "testbed", "lab", "cleanup", "--tag",
                              bridge[2:9]], capture_output=True, text=True, timeout=60)
        assert f"removed link {bridge}" in out.stdout, out.stdout + out.stderr
        assert not Path(f"/sys/class/net/{bridge}").exists()
    finally:
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True)
