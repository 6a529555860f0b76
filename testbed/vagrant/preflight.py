"""What this machine lacks to run a scenario on real VMs, each with the command that fixes
it. ``testbed run`` stops before doing anything when the list is not empty; ``testbed doctor``
prints it for every provider.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from testbed.agent.verbs import IMAGE_VERBS
from testbed.scenario import Scenario
from testbed.vagrant.machines import COMMUNICATORS as COMMUNICATORS_BY_OS
from testbed.vagrant.machines import communicator

PLACEHOLDER_SHA256 = "0" * 64
LINUX_BOX = "testbed/debian12"  # built here by vms/box/build-debian-box.sh
HASHICORP_VAGRANT = Path("/opt/vagrant/embedded")  # HashiCorp's build bundles the WinRM gems


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str = ""
    fix: str = ""

    def line(self) -> str:
        mark = "ok     " if self.ok else "MISSING"
        text = f"  {mark} {self.what}" + (f": {self.detail}" if self.detail else "")
        return text + (f"\n          fix: {self.fix}" if not self.ok and self.fix else "")


def _run(*argv: str, timeout: float = 30) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None


COMMUNICATORS = {  # how vagrant reaches a guest -> which guests need it
    "ssh": "Linux guests",
    "winssh": "Windows guests over their OpenSSH server (Windows 10 1809+, Server 2019+)",
    "winrm": "Windows guests over WinRM (boxes without OpenSSH)",
}
VAGRANT_GEMS = (Path("/usr/share/rubygems-integration/all/gems"),    # Debian's vagrant
                HASHICORP_VAGRANT / "gems" / "gems")                 # HashiCorp's build


def _gem_dirs(name: str) -> list[Path]:
    return sorted(d for root in VAGRANT_GEMS if root.is_dir() for d in root.glob(f"{name}-[0-9]*"))


def communicator_check(name: str, have_vagrant: bool = True) -> Check:
    """Whether this machine's vagrant (and ssh client) can use communicator ``name``."""
    what = f"vagrant communicator {name} for {COMMUNICATORS[name]}"
    ssh = shutil.which("ssh") is not None
    if name == "winrm":
        gems = bool(_gem_dirs("winrm")) or HASHICORP_VAGRANT.exists()
        return Check(what, have_vagrant and gems,
                     "WinRM gems present" if gems else "Debian's vagrant has no WinRM gems",
                     "use the box's OpenSSH (communicator: winssh), or install HashiCorp's "
                     "vagrant package (developer.hashicorp.com/vagrant/install)")
    plugin = name == "ssh" or any((d / "plugins" / "communicators" / name).is_dir()
                                  for d in _gem_dirs("vagrant"))
    ok = have_vagrant and plugin and ssh
    detail = ("" if ok else "no ssh client" if not ssh else
              f"this vagrant has no {name} communicator" if have_vagrant else "no vagrant")
    return Check(what, ok, detail, "apt-get install openssh-client vagrant (2.2 or later)")


def box_communicators(home: Path | None = None) -> dict[str, str]:
    """The communicator each box added to vagrant asks for (its Vagrantfile; ssh if it says
    nothing), by box name."""
    home = home or Path(os.environ.get("VAGRANT_HOME", Path.home() / ".vagrant.d"))
    out: dict[str, str] = {}
    for vf in sorted((home / "boxes").glob("*/*/*/Vagrantfile")):
        name = vf.parents[2].name.replace("-VAGRANTSLASH-", "/")
        text = vf.read_text(errors="replace")
        found = [c for c in ("winrm", "winssh") if re.search(
            rf"communicator\s*=\s*[\"':]{c}\b", text)]
        windows = re.search(r"guest\s*=\s*[\"':]windows", text) is not None
        out[name] = found[0] if found else "winssh" if windows else "ssh"
    return out


def box_checks(home: Path | None = None) -> list[Check]:
    """Each box added to vagrant: the communicator it needs, and whether this machine has it."""
    out = []
    for box, name in box_communicators(home).items():
        c = communicator_check(name)
        out.append(Check(f"box {box}: needs communicator {name}", c.ok,
                         "usable here" if c.ok else c.detail, c.fix))
    return out


def vagrant_checks(hypervisor: str = "libvirt",
                   communicators: tuple[str, ...] = ("ssh", "winssh")) -> list[Check]:
    """The host side: vagrant, the communicators the guests need, the hypervisor."""
    checks = []
    version = _run("vagrant", "--version")
    checks.append(Check("vagrant", version is not None, (version or "not found").strip(),
                        "apt-get install vagrant vagrant-libvirt"))
    for name in communicators:
        checks.append(communicator_check(name, version is not None))
    plugins = (_run("vagrant", "plugin", "list") or "") if version is not None else ""
    if hypervisor == "libvirt":
        debian_plugin = Path("/usr/share/vagrant-plugins/plugins.d/vagrant-libvirt.json").exists()
        checks.append(Check("vagrant-libvirt plugin", "vagrant-libvirt" in plugins or debian_plugin,
                            "", "apt-get install vagrant-libvirt (or vagrant plugin install "
                            "vagrant-libvirt)"))
        virsh = _run("virsh", "-c", "qemu:///system", "version", timeout=10)
        checks.append(Check("libvirt (qemu:///system)", virsh is not None,
                            "reachable" if virsh else "virsh missing or libvirtd not running",
                            "apt-get install libvirt-daemon-system qemu-system-x86, then start "
                            "libvirtd (systemctl start libvirtd, or libvirtd -d)"))
        logd = Path("/run/libvirt/virtlogd-sock").exists()
        checks.append(Check("virtlogd (libvirt starts no guest without it)", logd,
                            "listening" if logd else "/run/libvirt/virtlogd-sock missing",
                            "virtlogd -d (or systemctl start virtlogd.socket)"))
        kvm = os.path.exists("/dev/kvm")
        checks.append(Check("KVM", kvm, "/dev/kvm present (if it cannot run guests, set "
                            "TESTBED_LIBVIRT_DRIVER=qemu)" if kvm else "software emulation "
                            "only (TESTBED_LIBVIRT_DRIVER=qemu; Windows guests will be very "
                            "slow)", "run on a host with hardware virtualisation"))
    elif hypervisor == "virtualbox":
        vbox = _run("VBoxManage", "--version")
        checks.append(Check("VirtualBox", vbox is not None, (vbox or "not found").strip(),
                            "install VirtualBox from virtualbox.org"))
    elif hypervisor == "hyperv":
        checks.append(Check("Hyper-V", os.name == "nt", "needs a Windows host",
                            "run on Windows with Hyper-V enabled"))
    return checks


def scenario_checks(scenario: Scenario) -> list[Check]:
    """The scenario's own needs: the gateway, boxes, installers with the right hash, reference
    images, and what this version of the provider cannot do yet."""
    from testbed.provider.gateway import missing_on_host

    config = scenario.vagrant or {}
    hypervisor = str(config.get("hypervisor", "libvirt"))
    vms = {v: c.vm for v, c in scenario.clients.items() if c.vm}
    needed = tuple(sorted({communicator(vm) for vm in vms.values()}))
    checks = vagrant_checks(hypervisor, needed)
    for variant, spec in vms.items():
        name, os_name = communicator(spec), str(spec.get("os", "linux"))
        if name not in COMMUNICATORS_BY_OS[os_name]:
            checks.append(Check(f"{variant}: communicator {name}", False,
                                f"not one for {os_name} guests",
                                f"use one of {', '.join(COMMUNICATORS_BY_OS[os_name])}"))
    checks.append(Check(f"hypervisor {hypervisor}: experiment network wiring",
                        hypervisor == "libvirt", "" if hypervisor == "libvirt" else
                        "vms/Vagrantfile wires the experiment bridge for libvirt only",
                        "use hypervisor: libvirt"))
    gateway = missing_on_host()
    checks.append(Check("gateway (network namespaces on this host: tcpdump, mitmdump)",
                        not gateway, "; ".join(gateway), "see the detail"))
    checks.append(Check("internet behind the gateway", scenario.internet_path is not None,
                        f"simulated: {scenario.internet_path.name}" if scenario.internet_path
                        else "the real internet through the gateway is not built yet",
                        "give the scenario a lab: {internet: FILE} (the simulated internet)"))
    have = _run("vagrant", "box", "list") or ""
    boxes = {str((c.vm or {}).get("box")) for c in scenario.clients.values() if c.vm}
    for box in sorted(b for b in boxes if b):
        fix = (f"bash vms/box/build-debian-box.sh debian12.box && vagrant box add --name {box} "
               "debian12.box" if box == LINUX_BOX else
               f"vagrant box add {box} --provider {hypervisor}")
        needs = sorted({communicator(vm) for vm in vms.values() if vm.get("box") == box})
        checks.append(Check(f"box {box}", box in have.split(),
                            f"communicator {', '.join(needs)}", fix))
    folder = scenario.path.parent
    for variant, client in scenario.clients.items():
        vm = client.vm
        if not vm:  # testbed.provider.mixed: a lab guest beside the VMs
            checks.append(Check(f"{variant}: a lab guest (no vm:) on the VMs' gateway", True))
            continue
        inst = vm.get("installer")
        if inst:
            checks.append(_installer(variant, folder, inst))
        images = client.app.images_dir
        used = sorted({str(s[v]) for steps in client.app.actions.values() for s in steps
                       for v in IMAGE_VERBS if v in s})
        absent = [n for n in used if not (images / n).is_file()]
        checks.append(Check(f"{variant}: reference images of app {client.app.name}",
                            not absent, f"{len(absent)} of {len(used)} missing"
                            + (f" ({', '.join(absent[:4])}...)" if absent else ""),
                            f"take them on a provisioned guest: see {images}/README.md"))
    return checks


def _installer(variant: str, folder: Path, inst: dict[str, object]) -> Check:
    want = str(inst.get("sha256", ""))
    what = f"{variant}: installer"
    if "path" not in inst:
        return Check(what, want != PLACEHOLDER_SHA256, f"downloaded from {inst.get('url')} at run",
                     "replace the placeholder sha256 with the installer's real hash")
    path = folder / str(inst["path"])
    if not path.is_file():
        return Check(what, False, f"{path} not found",
                     f"put the installer at {path} (see {folder / 'installers' / 'README.md'})")
    if want == PLACEHOLDER_SHA256:
        return Check(what, False, "the scenario's sha256 is a placeholder",
                     f"sha256sum {path}, and put the hash in the scenario")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Check(what, digest == want, f"sha256 {digest[:16]}…",
                 "the file differs from the one the scenario names: get the right copy")
