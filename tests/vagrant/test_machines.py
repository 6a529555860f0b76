"""The scenario drives the Vagrantfile through a machine list; the Vagrantfile accepts it."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

import pytest

from testbed.provider.gateway import GATEWAY_IP, GUEST_NET
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
@pytest.mark.parametrize("name", ["skype-2013.yaml", "vagrant-linux-lab.yaml"])
def test_vagrantfile_accepts_the_machine_list(tmp_path, name, libvirtd):
    spec = tmp_path / "machines.json"
    data = _spec(name, tmp_path)
    # vagrant-libvirt checks that the experiment bridge exists (the provider makes it)
    bridge = data["experiment_network"]["bridge"]
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    try:
        _validate(data, spec, tmp_path)
    finally:
        subprocess.run(["ip", "link", "delete", bridge], check=True)


def _validate(data: dict, spec: Path, tmp_path: Path) -> None:
    # Debian's vagrant cannot load Windows (WinRM) configs at all: validate a Linux variant
    for g in data["guests"]:
        g["os"] = "linux"
    write_machine_list(data, spec)
    out = subprocess.run(["vagrant", "validate"], cwd=ROOT / "vms", capture_output=True,
                         text=True, timeout=300, env={"TESTBED_MACHINES": str(spec),
                                                     "PATH": "/usr/bin:/bin:/usr/sbin",
                                                     "HOME": str(tmp_path)})
    assert "Vagrantfile validated successfully" in out.stdout, out.stdout + out.stderr


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
