"""A lab guest's own file-system and process view, as an unprivileged user (bubblewrap).

Inside its network namespace, each guest's programs (Xvfb, a session D-Bus, the agent and
the app under test) run in a bubblewrap sandbox:

* their own mount namespace: the system (``/usr``, ``/etc``) read-only; a private ``/tmp``,
  a home ``/home/guest`` and a runtime directory ``/run/user/<uid>``, each a folder of the
  run (``<run>/guests/<variant>/…``, kept for inspection); an ``/etc/ssl`` with the system
  bundle plus the gateway's CA (the run's, read-only: ``trusttemplates``; or the guest's own),
  its own ``/etc/passwd`` and ``/etc/group``; read-only, the
  Python that runs the agent, the ``testbed`` package and the folders the scenario's files are
  in (``shares``). Nothing else of the host — no other guest, no other run — is visible;
* their own PID, IPC and UTS namespaces: the host's processes are invisible, ``/proc/1`` is
  the sandbox's own;
* a user of their own: uid ``guest_uid(tag, index)``, different for every guest of every
  run, no capabilities, ``no_new_privs`` — so no route, filter or namespace of the host can
  be changed or entered (``ip route add`` and ``nsenter --net=/proc/1/ns/net`` fail).

At teardown the guest's folders are handed back to root (links not followed); nothing of a
guest is written to the host's shared places (its X socket is in its private ``/tmp``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import testbed
from testbed._errors import LabError
from testbed.lab import netns, truststores, uids
from testbed.lab.trusttemplates import TrustTemplates
from testbed.run.files import GUEST_HOME

UID_BASE = uids.GUESTS.base
MAX_GUESTS = uids.GUESTS.per_run  # guests per run that get a uid of their own
USER = "guest"
HOME = f"/home/{USER}"
DISPLAY = ":99"           # every guest has its own /tmp and network namespace: no clash
TOOLS = {"bwrap": "bubblewrap", "setpriv": "util-linux", "nft": "nftables"}
SYSTEM_BUNDLE = truststores.SYSTEM_BUNDLE
# the system's top-level folders that are links into /usr on a merged-/usr system
_USR_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# read-only parts of /var that desktop programs read (the rest of /var is an empty tmpfs)
_VAR_SHARES = ("/var/lib/dbus", "/var/cache/fontconfig", "/var/lib/xkb")


#: ``guest_uid(tag, index)``: the uid of run ``tag``'s ``index``-th guest, unique across
#: guests and runs
guest_uid = uids.GUESTS.uid


@dataclass(frozen=True)
class GuestFs:
    """A guest's folders on the host, under ``root`` (``<run>/guests/<variant>``)."""

    root: Path
    uid: int

    @property
    def home(self) -> Path:
        return self.root / GUEST_HOME

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def runtime(self) -> Path:
        return self.root / "run"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def trust_record(self) -> Path:
        return self.root / truststores.RECORD

    @property
    def log(self) -> Path:
        return self.root / "session.log"

    @property
    def runtime_dir(self) -> str:
        """``XDG_RUNTIME_DIR`` inside the guest."""
        return f"/run/user/{self.uid}"


def prepare(root: Path, uid: int, trust: Path | Sequence[Path] | None,
            start_profile: Path | None = None, nss_db: str | None = None,
            templates: TrustTemplates | None = None) -> GuestFs:
    """The guest's folders (``folders``), then its trust stores (``system_store``,
    ``app_stores``). ``trust``: the CAs to trust (`testbed.lab.labca.guest_cas`), put into
    every store an app may read (``truststores``; ``nss_db``: the app's own NSS database,
    relative to the home, besides ``~/.pki/nssdb``); with ``templates``, the run's stores made
    once for these CAs."""
    fs = folders(root, uid, start_profile)
    system_store(fs, trust, templates)
    app_stores(fs, trust, nss_db, templates)
    return fs


def folders(root: Path, uid: int, start_profile: Path | None = None) -> GuestFs:
    """The guest's folders: home (a copy of ``start_profile`` if given, else fresh; with the
    XDG folders), /tmp, its runtime folder, and its /etc files; the writable ones owned by the
    guest's user, mode 0700. Its session can start once its /etc/ssl is made too."""
    fs = GuestFs(root.resolve(), uid)
    if start_profile is not None:
        if fs.home.exists():
            raise LabError(f"{fs.home} exists already: a starting profile goes into a fresh "
                           "home only")
        try:  # links are copied as links: what they point to is not read on the host
            shutil.copytree(start_profile, fs.home, symlinks=True)
        except (OSError, shutil.Error) as e:
            raise LabError(f"cannot copy the starting profile {start_profile}: {e}") from e
    for d in (fs.home, fs.tmp, fs.runtime, fs.etc):
        d.mkdir(parents=True, exist_ok=True)
    for sub in (".config", ".cache", ".local/share", ".local/state", "Desktop", "Documents",
                "Downloads"):
        (fs.home / sub).mkdir(parents=True, exist_ok=True)
    (fs.home / ".Xauthority").touch()  # pyautogui (Xlib) wants one; an empty one will do
    (fs.etc / "passwd").write_text(f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                   f"{USER}:x:{uid}:{uid}:lab guest:{HOME}:/bin/sh\n")
    (fs.etc / "group").write_text(f"root:x:0:\n{USER}:x:{uid}:\n")
    for d in (fs.home, fs.tmp, fs.runtime):
        _own(d, uid)
        d.chmod(0o700)
    return fs


def _cas(trust: Path | Sequence[Path] | None) -> list[Path]:
    return [trust] if isinstance(trust, Path) else list(trust or [])


def system_store(fs: GuestFs, trust: Path | Sequence[Path] | None,
                 templates: TrustTemplates | None = None) -> None:
    """The guest's /etc/ssl (``truststores.system_store``); with ``templates``, a link to the
    run's, made once for these CAs (read-only in every guest, as the host's /etc is)."""
    cas, ssl = _cas(trust), fs.etc / "ssl"
    if ssl.is_symlink() or ssl.is_file():
        ssl.unlink()
    elif ssl.exists():
        shutil.rmtree(ssl)
    if templates is None or not cas:
        truststores.system_store(ssl, cas)
    else:
        ssl.symlink_to(os.path.relpath(templates.ssl(cas), fs.etc))


def app_stores(fs: GuestFs, trust: Path | Sequence[Path] | None, nss_db: str | None = None,
               templates: TrustTemplates | None = None) -> truststores.TrustRecord:
    """The CAs in the NSS databases of the guest's home and Java's store (``truststores``),
    owned by the guest; with ``templates``, copies of the run's. Safe while the guest's
    session runs: nothing but our own programs runs in it before its first step."""
    cas = _cas(trust)
    template = templates.get(cas) if templates is not None and cas else None
    record = truststores.install(fs.home, fs.etc / "ssl", cas, fs.trust_record, nss_db,
                                 template)
    for store in record.stores:
        if store.store == "nss" and store.installed:
            top = fs.home / store.where.removeprefix("~/").split("/")[0]
            if not top.is_symlink():  # (a link is owned as it is: never followed)
                _own(top, fs.uid)
    return record


def _own(path: Path, uid: int) -> None:
    """``path`` and everything under it owned by ``uid`` (links themselves, never followed)."""
    os.lchown(path, uid, uid)
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(top, name), uid, uid)


def release(fs: GuestFs) -> None:
    """Hand the guest's folders back to root once its processes are gone (kept in the run)."""
    for d in (fs.home, fs.tmp, fs.runtime):
        if d.exists():
            _own(d, 0)


def shares(extra: list[Path]) -> list[Path]:
    """What the guest reads from the host at the same path: the Python running testbed, the
    ``testbed`` package, and ``extra`` (the scenario's folders) — each once, none that a
    system folder bound anyway already holds."""
    import sys

    wanted = [Path(sys.base_prefix), Path(sys.prefix), Path(testbed.__file__).parent, *extra]
    out: list[Path] = []
    for p in sorted({p.resolve() for p in wanted if p.exists()}, key=lambda p: len(p.parts)):
        if p == Path("/") or any(p.is_relative_to(root) for root in (Path("/usr"), Path("/etc"))):
            continue
        if not any(p.is_relative_to(q) for q in out):
            out.append(p)
    return out


def bwrap_argv(fs: GuestFs, ns: str, shared: list[Path], argv: list[str]) -> list[str]:
    """The command that runs ``argv`` in the guest's sandbox (from inside its namespace)."""
    # (no --die-with-parent: it fires when the *thread* that started the guest ends; the
    # namespace's teardown ends the sandbox)
    cmd = ["bwrap", "--new-session", "--unshare-pid", "--unshare-ipc",
           "--unshare-uts", "--unshare-cgroup-try", "--hostname", USER,
           "--ro-bind", "/usr", "/usr"]
    for name in _USR_LINKS:
        top = Path("/") / name
        if top.is_symlink():
            cmd += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            cmd += ["--ro-bind", str(top), str(top)]
    cmd += ["--ro-bind", "/etc", "/etc",
            "--ro-bind", str(fs.etc / "passwd"), "/etc/passwd",
            "--ro-bind", str(fs.etc / "group"), "/etc/group",
            "--ro-bind", str(fs.etc / "ssl"), "/etc/ssl"]
    resolv = netns.NETNS_ETC / ns / "resolv.conf"
    if resolv.exists():
        cmd += ["--ro-bind", str(resolv), "/etc/resolv.conf"]
    cmd += ["--ro-bind", "/sys", "/sys", "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--tmpfs", "/dev/shm",  # POSIX shared memory (browsers)
            "--tmpfs", "/run", "--tmpfs", "/var", "--symlink", "/tmp", "/var/tmp"]
    made: set[Path] = {Path("/run"), Path("/var")}
    mounts = [*[("--ro-bind-try", Path(var), Path(var)) for var in _VAR_SHARES],
              ("--bind", fs.tmp, Path("/tmp")), ("--bind", fs.home, Path(HOME)),
              ("--bind", fs.runtime, Path(fs.runtime_dir)),
              *[("--ro-bind", p, p) for p in shared]]
    for how, source, target in mounts:
        for parent in reversed(target.parents[:-1]):  # traversable (bwrap makes them 0700)
            if parent not in made and not parent.is_relative_to("/usr"):
                cmd += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        cmd += [how, str(source), str(target)]
    uid = str(fs.uid)
    cmd += ["--chdir", "/", "--cap-drop", "ALL", "--cap-add", "CAP_SETUID",
            "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP", "--",
            "setpriv", "--reuid", uid, "--regid", uid, "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--", *argv]
    return cmd


def guest_env(fs: GuestFs, base: dict[str, str]) -> dict[str, str]:
    """The environment of the guest's session (paths as the guest sees them)."""
    env = dict(base)
    env.update({
        "HOME": HOME, "USER": USER, "LOGNAME": USER, "SHELL": "/bin/sh",
        "DISPLAY": DISPLAY, "XDG_SESSION_TYPE": "x11", "XDG_RUNTIME_DIR": fs.runtime_dir,
        "XDG_CONFIG_HOME": f"{HOME}/.config", "XDG_CACHE_HOME": f"{HOME}/.cache",
        "XDG_DATA_HOME": f"{HOME}/.local/share", "XDG_STATE_HOME": f"{HOME}/.local/state",
        "PATH": "/usr/local/bin:/usr/bin:/bin", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "SSL_CERT_FILE": str(SYSTEM_BUNDLE), "SSL_CERT_DIR": str(SYSTEM_BUNDLE.parent),
    })
    return env


def start(ns: str, fs: GuestFs, shared: list[Path], argv: list[str], env: dict[str, str],
          secret: str) -> subprocess.Popen[bytes]:
    """Start ``argv`` in the guest's sandbox inside namespace ``ns``; ``secret`` is written to
    its standard input (then closed) — never to its environment or command line."""
    cmd = ["ip", "netns", "exec", ns, *bwrap_argv(fs, ns, shared, argv)]
    with fs.log.open("ab") as out:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        except OSError as e:
            raise LabError(f"cannot start the sandbox of {fs.root.name} in {ns}: {e}") from e
    assert proc.stdin is not None
    try:
        proc.stdin.write(secret.encode() + b"\n")
        proc.stdin.close()
    except OSError:  # the sandbox died at once: the caller sees it exit
        pass
    return proc
