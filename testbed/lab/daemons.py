"""Real server software in the simulated internet: a row of the internet data file with a
``daemon`` runs that program on the row's address, for the whole run.

    internet netns ── veth s<i> ──┐   one network namespace per daemon row, tbed-<tag>-s<i>:
    (routes <address>/32 to it)   └── eth0 <address>/32, default route back to the internet

In its namespace the daemon is a host of its own (a daemon that listens on every address
clashes with nothing) and reaches the rest of the simulated internet, the guests and the
other daemons like any lab server. It runs in a bubblewrap sandbox as a user of its own
(``daemon_uid``, no capabilities; ports below 1024 are allowed to any user of its namespace):
the host's file system read-only, a private ``/tmp``, ``/var/tmp`` and ``/run``, the lab's
resolver in its ``/etc/resolv.conf`` (names of other lab servers resolve, as for federation),
and its folder of the run (``lab/daemons/<row name>/``) at ``/run/daemon``:

    config/   its files, placeholders filled in (`testbed.scenario.daemon_files`)
    data/     its own writable folder            logs/   for the log files it writes
    tls/      cert.pem, key.pem: issued for the row's names by the run's lab CA (`labca`)
    daemon.log   what it printed

The system bundle it reads (``/etc/ssl/certs/ca-certificates.crt``) holds the lab CA too.
It is up when its ``ready`` port answers on the row's address; it goes with its namespace at
teardown (and with ``netns.sweep`` of the run's tag), its folders handed back to root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from testbed._errors import LabError
from testbed.lab import labca, netns, uids
from testbed.lab.internet_map import InternetMap, Server
from testbed.run import files as f
from testbed.scenario import daemon_files

DAEMON_UID_BASE = uids.DAEMONS.base
MAX_DAEMONS = uids.DAEMONS.per_run
INSIDE = Path("/run/daemon")  # where a daemon sees its folder of the run
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_CLONE_NEWNET: int = getattr(os, "CLONE_NEWNET", 0x40000000)


def _setns(fd: int, kind: int) -> None:
    """os.setns (Python 3.12+), or libc's on an older Python."""
    if hasattr(os, "setns"):
        os.setns(fd, kind)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, kind) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


def missing_programs(internet: InternetMap, path: str | None = None) -> list[str]:
    """The daemon programs of ``internet`` this machine lacks, one line each."""
    return [f"{row.daemon.command[0]}: the daemon of {row.name} ({row.address}) in "
            f"{internet.path.name}; install its package"
            for row in internet.daemons() if row.daemon is not None
            and shutil.which(row.daemon.command[0], path=path) is None]


#: ``daemon_uid(tag, index)``: the uid of run ``tag``'s ``index``-th daemon, unique across
#: daemons and runs
daemon_uid = uids.DAEMONS.uid


@dataclass(frozen=True)
class Started:
    row: Server
    ns: str
    root: Path
    uid: int
    proc: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def program(self) -> str:
        assert self.row.daemon is not None
        return self.row.daemon.command[0]

    def failure(self, what: str) -> LabError:
        """One line: the daemon, what went wrong, its last words, its log."""
        last = ""
        if self.log.is_file():
            lines = [x.strip() for x in self.log.read_text(errors="replace").splitlines()
                     if x.strip()]
            last = f' (last output: "{lines[-1][:200]}")' if lines else ""
        return LabError(f"daemon {self.program} on {self.row.name} ({self.row.address}) "
                        f"{what}{last}; its log: {self.log}")


def placeholders(row: Server) -> dict[str, str]:
    """The values of a daemon's placeholders, as the daemon sees them."""
    return {"address": row.address, "name": row.name,
            "cert": str(INSIDE / "tls" / "cert.pem"), "key": str(INSIDE / "tls" / "key.pem"),
            "ca": str(INSIDE / "tls" / "ca.pem"), "config": str(INSIDE / "config"),
            "data": str(INSIDE / "data"), "logs": str(INSIDE / "logs")}


def folder(run: Path, row: Server) -> Path:
    return run / f.DAEMONS_DIR / f.plain_name(row.name)


class Daemons:
    """The daemons of one run's simulated internet (none when no row has one)."""

    def __init__(self, run: Path, internet: InternetMap, tag: str, internet_ns: str,
                 router: str, env: dict[str, str], resolver: str = "") -> None:
        """``router``: the internet namespace's address the daemons' default route uses;
        ``resolver``: the lab resolver's address, their /etc/resolv.conf."""
        self.run, self.internet, self.tag = run, internet, tag
        self.internet_ns, self.router, self.env = internet_ns, router, env
        self.resolver = resolver
        self.started: list[Started] = []
        self.namespaces: list[str] = []
        self.folders: list[Path] = []  # handed back to root at teardown

    def start(self) -> None:
        """Issue the certificates, start every daemon, wait until each one's port answers;
        a daemon that does not come up is a LabError of one line."""
        rows = self.internet.daemons()
        if not rows:
            return
        ca = labca.LabCa(self.tag)
        ca_file = ca.save(labca.lab_ca_file(self.run))
        netns.sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=self.internet_ns)
        for i, row in enumerate(rows):
            assert row.daemon is not None
            program = row.daemon.command[0]
            if shutil.which(program, path=self.env.get("PATH")) is None:
                raise LabError(f"daemon {program} on {row.name} ({row.address}): no program "
                               f"{program!r} on this machine (install its package)")
            root = self._prepare(row, daemon_uid(self.tag, i), ca, ca_file)
            self.folders.append(root)
            ns = self._plumb(i, row)
            uid = daemon_uid(self.tag, i)
            proc = netns.spawn(ns, self._argv(row, root, uid), root / "daemon.log", {
                **self.env, "HOME": str(INSIDE / "data"), "TMPDIR": "/tmp"})
            self.started.append(Started(row, ns, root, uid, proc))
        self._await_ready()

    def _prepare(self, row: Server, uid: int, ca: labca.LabCa, ca_file: Path) -> Path:
        assert row.daemon is not None
        root = folder(self.run, row)
        if root.exists():
            shutil.rmtree(root)
        for sub in ("config", "data", "logs", "tls"):
            (root / sub).mkdir(parents=True)
        for d in (root, root / "config", root / "tls"):
            d.chmod(0o755)
        issued = ca.issue(row.names, row.address, root / "tls")
        shutil.copyfile(ca_file, root / "tls" / "ca.pem")
        system = SYSTEM_BUNDLE.read_text() if SYSTEM_BUNDLE.is_file() else ""
        (root / "tls" / "trusted.pem").write_text(
            system + ("\n" if system and not system.endswith("\n") else "")
            + ca_file.read_text())
        (root / "resolv.conf").write_text(f"nameserver {self.resolver}\n" if self.resolver
                                          else "")
        values = placeholders(row)
        for src in row.daemon.files:
            try:
                text = src.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise LabError(f"daemon {row.daemon.command[0]} on {row.name}: cannot read "
                               f"{src}: {e}") from e
            (root / "config" / src.name).write_text(daemon_files.render(text, values))
        for d in (root / "data", root / "logs"):
            os.chown(d, uid, uid)
            d.chmod(0o700)
        os.chown(issued.key, uid, uid)
        return root

    def _plumb(self, i: int, row: Server) -> str:
        ns = f"{netns.NS_PREFIX}{self.tag}-s{i}"
        self.namespaces.append(ns)  # before it exists: teardown removes what was half-made
        netns.internet_host(ns, self.internet_ns, f"s{i}", row.address, self.router,
                            ("net.ipv4.ip_unprivileged_port_start=0",))
        return ns

    def _argv(self, row: Server, root: Path, uid: int) -> list[str]:
        assert row.daemon is not None
        values = placeholders(row)
        command = [arg.format(**values) for arg in row.daemon.command]
        host = row.name.split(".")[0][:63]
        u = str(uid)
        return ["bwrap", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--hostname", host,
                "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                "--perms", "1777", "--tmpfs", "/dev/shm", "--perms", "1777", "--tmpfs", "/tmp",
                "--perms", "1777", "--tmpfs", "/var/tmp", "--tmpfs", "/run",
                "--bind", str(root), str(INSIDE),
                "--ro-bind", str(root / "tls" / "trusted.pem"), str(SYSTEM_BUNDLE),
                "--ro-bind", str(root / "resolv.conf"), "/etc/resolv.conf",
                "--chdir", str(INSIDE), "--cap-drop", "ALL",
                "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                "--cap-add", "CAP_SETPCAP", "--",
                "setpriv", "--reuid", u, "--regid", u, "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--no-new-privs", "--", *command]

    def _await_ready(self) -> None:
        pending = list(self.started)
        deadlines = {id(d): time.monotonic() + (d.row.daemon.ready_seconds
                                                if d.row.daemon else 30) for d in pending}
        while pending:
            for d in list(pending):
                assert d.row.daemon is not None
                port = d.row.daemon.ready
                if answers(d.ns, d.row.address, port):
                    pending.remove(d)
                    continue
                code = d.proc.poll()
                if code not in (None, 0):  # 0: it went to the background; its port decides
                    raise d.failure(f"exited with status {code} before port {port} answered")
                if time.monotonic() > deadlines[id(d)]:
                    raise d.failure(f"did not answer on port {port} within "
                                    f"{d.row.daemon.ready_seconds:g} s")
            if pending:
                time.sleep(0.1)

    def teardown(self) -> None:
        """Their namespaces (and every process in them), then their folders back to root."""
        names, self.namespaces = self.namespaces, []
        netns.delete_all(names)
        netns.reap([d.proc for d in self.started])
        for root in self.folders:
            release(root)
        self.started.clear()
        self.folders.clear()


def release(root: Path) -> None:
    """Everything under ``root`` owned by root again (links themselves, never followed)."""
    for top, dirs, names in os.walk(root):
        for name in dirs + names:
            os.lchown(os.path.join(top, name), 0, 0)


def answers(ns: str, address: str, port: int, timeout: float = 0.5) -> bool:
    """Whether TCP ``address``:``port`` accepts a connection, seen from namespace ``ns``."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with open(f"/run/netns/{ns}") as handle:
                _setns(handle.fileno(), _CLONE_NEWNET)  # this thread only
            with socket.create_connection((address, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 1)
    return bool(result and result[0])
