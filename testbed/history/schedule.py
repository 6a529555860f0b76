"""Schedule ``testbed nightly`` with a systemd timer (and print the crontab equivalent).

    install(at, unit_dir=..., enable=True, runner=..., ...) -> ScheduleResult
    remove(unit_dir=..., disable=True, runner=..., ...) -> ScheduleResult
    parse_at("02:00") -> (2, 0)          BadInput (exit 2) otherwise
    crontab_line(at, repo, command) -> str

systemctl is only ever called through ``runner`` (a function taking the argv), so tests can
check the commands without touching the machine's systemd.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testbed.history.errors import BadInput, HistoryError

UNIT = "testbed-nightly"
SERVICE = f"{UNIT}.service"
TIMER = f"{UNIT}.timer"
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
SYSTEMD_DIRS = (Path("/etc/systemd/system"), Path("/run/systemd/system"),
                Path("/lib/systemd/system"), Path("/usr/lib/systemd/system"))
SYSTEMD_RUNNING = Path("/run/systemd/system")
REPO = Path(__file__).resolve().parents[2]
# cron's PATH is /usr/bin:/bin: the lab needs ip, iptables and tcpdump from the sbin folders.
CRON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Runner = Callable[[Sequence[str]], None]


def systemctl(argv: Sequence[str]) -> None:
    """The real runner: run ``argv``; HistoryError with its stderr when it fails."""
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        raise HistoryError(f"{shlex.join(argv)}: {e}") from e
    if res.returncode != 0:
        msg = (res.stderr or res.stdout).strip().splitlines()
        raise HistoryError(f"{shlex.join(argv)} failed: {msg[-1] if msg else res.returncode}")


def parse_at(at: str) -> tuple[int, int]:
    """``HH:MM`` on a 24-hour clock -> (hour, minute)."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", at.strip())
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise BadInput(f"--at {at!r}: expected a time as HH:MM on a 24-hour clock, e.g. 02:00")
    return int(m[1]), int(m[2])


def nightly_command(repo: Path = REPO, via: str = "auto") -> list[str]:
    """What the schedule runs in ``repo``: ``make nightly`` (sets up first, so a pulled change
    to the dependencies is installed) or ``<repo>/.venv/bin/testbed nightly``."""
    make = shutil.which("make")
    if via == "make" or (via == "auto" and make and (repo / "Makefile").is_file()):
        return [make or "/usr/bin/make", "nightly"]
    venv = repo / ".venv" / "bin" / "testbed"
    return [str(venv), "nightly"]


def service_text(repo: Path, command: Sequence[str]) -> str:
    return f"""\
# Written by `testbed schedule install`; remove with `testbed schedule remove`.
[Unit]
Description=testbed nightly regression runs (scenarios marked nightly: true)
Documentation=file://{repo}/README.md

[Service]
Type=oneshot
# The embedded lab needs root (network namespaces, tcpdump); User= also sets HOME.
User=root
WorkingDirectory={repo}
ExecStart={shlex.join(command)}
# A run takes ~20 s per scenario; stop a stuck night (SIGTERM lets the lab tear down).
TimeoutStartSec=4h
KillMode=mixed
"""


def timer_text(hour: int, minute: int) -> str:
    return f"""\
# Written by `testbed schedule install`; remove with `testbed schedule remove`.
[Unit]
Description=Run testbed nightly every day at {hour:02d}:{minute:02d}

[Timer]
OnCalendar=*-*-* {hour:02d}:{minute:02d}:00
Persistent=true
Unit={SERVICE}

[Install]
WantedBy=timers.target
"""


def crontab_line(at: str, repo: Path = REPO, command: Sequence[str] | None = None) -> str:
    """The equivalent line for root's crontab (machines without systemd)."""
    hour, minute = parse_at(at)
    cmd = shlex.join(command or nightly_command(repo))
    return (f"{minute} {hour} * * * cd {shlex.quote(str(repo))} && PATH={CRON_PATH} {cmd} "
            f">> results/nightly.log 2>&1")


@dataclass
class ScheduleResult:
    files: list[Path] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)  # what was run (or would be)
    messages: list[str] = field(default_factory=list)


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except PermissionError as e:
        raise HistoryError(f"{path}: permission denied (installing units needs root, or "
                           "use --unit-dir)") from e
    except OSError as e:
        raise HistoryError(f"{path}: cannot write: {e.strerror or e}") from e


def install(at: str, unit_dir: Path = DEFAULT_UNIT_DIR, enable: bool = True,
            runner: Runner = systemctl, repo: Path = REPO, via: str = "auto",
            systemd_marker: Path = SYSTEMD_RUNNING) -> ScheduleResult:
    """Write the service and timer into ``unit_dir`` and (unless ``enable`` is False or
    systemd is not running) enable the timer; the messages include the crontab line."""
    hour, minute = parse_at(at)
    repo = Path(repo).resolve()
    command = nightly_command(repo, via)
    unit_dir = Path(unit_dir)
    res = ScheduleResult()
    service, timer = unit_dir / SERVICE, unit_dir / TIMER
    _write(service, service_text(repo, command))
    _write(timer, timer_text(hour, minute))
    res.files = [service, timer]
    res.messages.append(f"wrote {service} and {timer} "
                        f"(daily at {hour:02d}:{minute:02d}: {shlex.join(command)} in {repo})")
    standard = unit_dir.resolve() in {d.resolve() for d in SYSTEMD_DIRS}
    if standard:
        cmds = [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", TIMER]]
    else:  # systemd does not read this folder: link the units in, by absolute path
        cmds = [["systemctl", "link", str(service.resolve())], ["systemctl", "daemon-reload"],
                ["systemctl", "enable", "--now", str(timer.resolve())]]
    res.commands = cmds
    if not enable:
        res.messages.append("not enabled (--no-enable); to enable: "
                            + " && ".join(shlex.join(c) for c in cmds))
    elif not systemd_marker.is_dir():
        res.messages.append(f"systemd is not running on this machine ({systemd_marker} is "
                            "missing): the units are written but not enabled; use the crontab "
                            "line below instead")
    else:
        for c in cmds:
            runner(c)
        res.messages.append(f"enabled: {TIMER} (systemctl list-timers {TIMER}; logs: "
                            f"journalctl -u {SERVICE})")
    res.messages.append("without systemd, add this line to root's crontab (crontab -e):")
    res.messages.append("  " + crontab_line(at, repo, command))
    return res


def remove(unit_dir: Path = DEFAULT_UNIT_DIR, disable: bool = True, runner: Runner = systemctl,
           systemd_marker: Path = SYSTEMD_RUNNING) -> ScheduleResult:
    """Disable the timer (when systemd runs) and delete both unit files from ``unit_dir``."""
    unit_dir = Path(unit_dir)
    res = ScheduleResult()
    files = [unit_dir / SERVICE, unit_dir / TIMER]
    present = [f for f in files if f.exists()]
    if not present:
        res.messages.append(f"nothing to remove: no {SERVICE} or {TIMER} in {unit_dir}")
        return res
    active = disable and systemd_marker.is_dir()
    if active:
        # disable also removes the links that `systemctl link` made; a unit systemd never
        # loaded makes it fail, which does not stop the removal.
        cmd = ["systemctl", "disable", "--now", TIMER, SERVICE]
        res.commands.append(cmd)
        try:
            runner(cmd)
        except HistoryError as e:
            res.messages.append(f"warning: {e}")
    for f in present:
        try:
            f.unlink()
        except PermissionError as e:
            raise HistoryError(f"{f}: permission denied (removing units needs root)") from e
        res.files.append(f)
    res.messages.append("removed " + " and ".join(str(f) for f in res.files))
    if active:
        res.commands.append(["systemctl", "daemon-reload"])
        runner(["systemctl", "daemon-reload"])
    elif disable:
        res.messages.append(f"systemd is not running on this machine ({systemd_marker} is "
                            "missing): remove the crontab line by hand if you added it")
    return res
