"""The per-run set-up of a Linux guest, in one ssh connection.

After a snapshot restore the guest needs the clock, the gateway's CA (and the lab's), the
agent's code, the build profiles its app reads, and a fresh token. The code is staged once,
before the clean snapshot (its launcher then waits, imported, in the snapshot), and sent
again only when it changed. All of it goes down one ssh connection (a handshake costs about
a second under software emulation): a small Python receiver on the guest reads a header
line with the archive's length, unpacks the archive into ``UPLOAD`` and hands the rest of
its standard input — the CA and the agent's environment, never on a command line or in a
log — to ``run-setup.sh``, which writes the environment file the session's launcher waits for.

The archive holds the ``testbed`` package, the set-up scripts, ``builds/<variant>.yaml``
and ``vendor/``: the agent's pure-Python modules that Debian does not package (pyautogui and
its helpers), copied from this installation. The box itself has only Debian's packages.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import tarfile
from pathlib import Path

import testbed
from testbed.agent.launch import READY

VMS = Path(testbed.__file__).resolve().parent.parent / "vms"
UPLOAD = "/tmp/testbed-upload"
SETUP_SCRIPTS = ("run-setup.sh", "trust-ca.sh")  # vms/provision/linux
# pure Python, not in Debian 12; python3-xlib, python3-pil and python3-numpy come from the box
VENDOR = ("pyautogui", "pyscreeze", "pytweening", "pymsgbox", "mouseinfo", "pygetwindow",
          "pyrect", "pyperclip")
GUEST_BUILDS = "/opt/testbed/builds"
GUEST_SETUP = "/opt/testbed/run-setup.sh"  # kept there with the staged code

RECEIVER = (
    "import io,os,shutil,subprocess,sys,tarfile\n"
    "i,u=sys.stdin.buffer,sys.argv[2]\n"
    "shutil.rmtree(u,ignore_errors=True)\n"
    "os.makedirs(u)\n"
    "n=int(i.readline())\n"
    "if n:tarfile.open(fileobj=io.BytesIO(i.read(n))).extractall(u)\n"
    "s=u+'/run-setup.sh'\n"
    "s=s if os.path.exists(s) else '/opt/testbed/run-setup.sh'\n"
    "sys.exit(subprocess.run(['sh',s,sys.argv[1],u],input=i.read()).returncode)\n"
)


def _skip_caches(t: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in t.name else t


def _module_paths(name: str) -> list[Path]:
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ModuleNotFoundError(f"{name} (the agent needs it in the guest) is not installed")
    if spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]
    return [Path(str(spec.origin))]


@functools.cache
def code_archive(builds: tuple[tuple[str, Path], ...] = ()) -> bytes:
    """The archive for every guest of a run (made once per process and build set)."""
    buf = io.BytesIO()
    package = Path(testbed.__file__).resolve().parent
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(package, "testbed", filter=_skip_caches)
        for script in SETUP_SCRIPTS:
            tar.add(VMS / "provision" / "linux" / script, script)
        for name in VENDOR:
            for path in _module_paths(name):
                tar.add(path, f"vendor/{path.name}", filter=_skip_caches)
        for variant, build in builds:
            tar.add(build, f"builds/{variant}.yaml")
    return buf.getvalue()


def guest_build(variant: str) -> str:
    """Where a variant's build profile is in its guest."""
    return f"{GUEST_BUILDS}/{variant}.yaml"


def setup_command(now: int, code: bool = True) -> str:
    """The one remote command, as root: the receiver; without code, the guest's own
    run-setup.sh straight away (a Python start-up less: a second under software emulation)."""
    if not code:
        return f"sudo sh {GUEST_SETUP} {now} {UPLOAD}"
    quoted = RECEIVER.replace("'", "'\"'\"'")
    return f"sudo python3 -c '{quoted}' {now} {UPLOAD}"


def digest(archive: bytes) -> str:
    return hashlib.sha256(archive).hexdigest()


def setup_input(archive: bytes | None, cas: list[Path], env: dict[str, str]) -> bytes:
    """The remote command's standard input: the archive (for the receiver; None: no code,
    for run-setup.sh itself), then the CAs (PEM), a line ``--`` and the agent's environment
    (secret: never logged)."""
    pem = "".join(p.read_text().rstrip("\n") + "\n" for p in cas)
    rest = (pem + "--\n" + "".join(f"{k}={v}\n" for k, v in env.items())).encode()
    return rest if archive is None else f"{len(archive)}\n".encode() + archive + rest


# -- Windows guests (OpenSSH; the agent's code comes with their provisioning) -------------
WINDOWS_SETUP = r"C:\testbed\run-setup.ps1"  # vms/provision/windows/run-setup.ps1
WINDOWS_CUE = rf"C:\Users\vagrant\.cache\{READY}"


def windows_setup_command(now: int) -> str:
    return (f"powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -File "
            f"{WINDOWS_SETUP} -Now {now}")


def windows_setup_input(cas: list[Path], env: dict[str, str]) -> bytes:
    """run-setup.ps1's standard input: the CAs (PEM), a line ``--``, the environment."""
    pem = "".join(p.read_text().rstrip("\n") + "\n" for p in cas)
    return (pem + "--\n" + "".join(f"{k}={v}\n" for k, v in env.items())).encode()


def windows_wait_command(seconds: int) -> str:
    """Succeeds once the logged-on session's launcher waits, imported, for a run."""
    return (f'powershell -NoProfile -Command "for ($i = 0; $i -lt {seconds * 2}; $i++) '
            f"{{ if (Test-Path '{WINDOWS_CUE}') {{ exit 0 }}; Start-Sleep -Milliseconds 500 }}; "
            "Write-Error 'the agent launcher did not start: see C:\\testbed\\agent.log'; exit 1\"")
