"""The scenario drives the Vagrantfile through a machine list; the Vagrantfile accepts it."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from testbed.scenario import load_scenario
from testbed.vagrant.machines import machine_list, write_machine_list

ROOT = Path(__file__).resolve().parents[2]


def test_machine_list_from_the_real_study():
    spec = machine_list(load_scenario(ROOT / "scenarios" / "skype-2013.yaml"))
    assert spec["hypervisor"] == "libvirt"
    assert [g["name"] for g in spec["guests"]] == ["regular", "tom-en", "tom-zh"]
    exp = ipaddress.ip_network(spec["experiment_network"]["cidr"])
    mgmt = ipaddress.ip_network(spec["management_network"]["cidr"])
    addresses = [spec["gateway"]["experiment_ip"], *(g["experiment_ip"] for g in spec["guests"])]
    assert len(set(addresses)) == 4 and all(ipaddress.ip_address(a) in exp for a in addresses)
    assert not str(spec["gateway"]["experiment_ip"]).endswith(".1")  # the host bridge's
    assert all(ipaddress.ip_address(g["management_ip"]) in mgmt for g in spec["guests"])
    regular = spec["guests"][0]
    assert regular["os"] == "windows" and regular["memory"] == 4096
    assert regular["installer"]["file"] == "SkypeSetupFull-6.3.0.105.exe"
    assert regular["installer"]["args"] == ["/VERYSILENT", "/SP-", "/NOLAUNCH"]


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed")
def test_vagrantfile_accepts_the_machine_list(tmp_path):
    spec = tmp_path / "machines.json"
    write_machine_list(load_scenario(ROOT / "scenarios" / "skype-2013.yaml"), spec)
    # Debian's vagrant cannot load Windows (WinRM) configs at all: validate a Linux variant
    data = json.loads(spec.read_text())
    for g in data["guests"]:
        g["os"] = "linux"
    spec.write_text(json.dumps(data))
    out = subprocess.run(["vagrant", "validate"], cwd=ROOT / "vms", capture_output=True,
                         text=True, timeout=300, env={"TESTBED_MACHINES": str(spec),
                                                     "PATH": "/usr/bin:/bin:/usr/sbin",
                                                     "HOME": str(tmp_path)})
    assert "Vagrantfile validated successfully" in out.stdout, out.stdout + out.stderr
