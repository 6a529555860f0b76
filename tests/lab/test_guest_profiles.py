"""A guest's home as a real app finds and leaves it, with real bubblewrap sandboxes (as the lab
runs its guests): each run starts from a fresh home, or from a copy of the profile folder the
scenario names; what the app leaves in it is kept in the run directory
(``guests/<variant>/home``); nothing of one run's home is visible to the next; the scenario's
folder is never written."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from testbed._errors import LabError
from testbed.lab import sandbox, truststores
from testbed.run import files

from . import tlskit

needs_bwrap = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("bwrap") is None or shutil.which("setpriv") is None,
    reason="needs root, bubblewrap and setpriv")
pytestmark = needs_bwrap
SKELETON = {".Xauthority", ".cache", ".config", ".local", ".pki", "Desktop", "Documents",
            "Downloads"}


def _guest(run: Path, variant: str, index: int, ca: Path | None,
           start: Path | None = None) -> sandbox.GuestFs:
    return sandbox.prepare(files.guest_dir(run, variant), sandbox.guest_uid("00bb", index), ca,
                           start)


def _sh(fs: sandbox.GuestFs, script: str) -> str:
    done = subprocess.run(sandbox.bwrap_argv(fs, "none", [], ["sh", "-c", script]),
                          env=sandbox.guest_env(fs, {}), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, f"the guest's shell failed: {done.stderr}"
    return done.stdout


def _tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_symlink():
            h.update(os.readlink(p).encode())
        elif p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tlskit.make_ca(tmp_path_factory.mktemp("pki"))[0]


@pytest.fixture
def start(tmp_path: Path) -> Path:
    """A starting profile in a scenario's folder: an app already signed in."""
    folder = tmp_path / "scenario" / "profiles" / "signed-in"
    (folder / ".config" / "chat").mkdir(parents=True)
    (folder / ".config" / "chat" / "account.ini").write_text("user=alice\nsigned_in=yes\n")
    (folder / ".local" / "share" / "chat" / "logs").mkdir(parents=True)
    (folder / ".local" / "share" / "chat" / "logs" / "old.log").write_text("hello\n")
    (folder / ".config" / "chat" / "current").symlink_to("account.ini")
    return folder


# -- fresh per run ---------------------------------------------------------------------------
def test_each_run_starts_from_a_fresh_home(tmp_path, ca):
    first = _guest(tmp_path / "run1", "v", 0, ca)
    _sh(first, 'mkdir -p "$HOME/.config/app" && echo run1-secret > "$HOME/.config/app/state"'
               ' && echo run1 > /tmp/left-in-tmp')
    sandbox.release(first)
    second = _guest(tmp_path / "run2", "v", 1, ca)
    seen = _sh(second, 'ls -A "$HOME"; ls -A /tmp; '
                       'grep -rl run1-secret /home /tmp /run /var /etc 2>/dev/null || true')
    names = set(seen.split())
    assert names & {"app", "state", "left-in-tmp"} == set(), (
        f"run 2's guest sees what run 1 left: {sorted(names)}")
    assert not any("state" in n for n in names), seen
    assert set(os.listdir(second.home)) == SKELETON


def test_the_home_the_app_left_is_kept_in_the_run(tmp_path, ca):
    fs = _guest(tmp_path / "run", "v", 0, ca)
    _sh(fs, 'mkdir -p "$HOME/.mozilla" && echo prefs > "$HOME/.mozilla/prefs.js"')
    sandbox.release(fs)
    kept = tmp_path / "run" / files.GUESTS_DIR / "v" / files.GUEST_HOME / ".mozilla" / "prefs.js"
    assert kept.read_text() == "prefs\n"
    assert kept.stat().st_uid == 0  # handed back to root at teardown


# -- a starting profile ----------------------------------------------------------------------
def test_a_named_profile_is_copied_in_and_the_app_finds_it(tmp_path, ca, start):
    fs = _guest(tmp_path / "run", "v", 0, ca, start)
    out = _sh(fs, 'cat "$HOME/.config/chat/account.ini" "$HOME/.config/chat/current" '
                  '"$HOME/.local/share/chat/logs/old.log"; id -u')
    assert out.split() == ["user=alice", "signed_in=yes", "user=alice", "signed_in=yes",
                           "hello", str(fs.uid)]
    assert (fs.home / ".config" / "chat" / "current").is_symlink()
    assert {p.stat().st_uid for p in fs.home.rglob("*") if not p.is_symlink()} == {fs.uid}


def test_what_the_app_changes_is_kept_and_the_scenarios_folder_is_not_written(tmp_path, ca,
                                                                              start):
    before = _tree_digest(start)
    fs = _guest(tmp_path / "run", "v", 0, ca, start)
    _sh(fs, 'echo last_seen=now >> "$HOME/.config/chat/account.ini" && '
            'echo new > "$HOME/.local/share/chat/logs/new.log" && '
            'rm "$HOME/.local/share/chat/logs/old.log"')
    sandbox.release(fs)
    assert _tree_digest(start) == before, "the scenario's profile folder was changed"
    left = files.guest_dir(tmp_path / "run", "v") / files.GUEST_HOME
    assert (left / ".config/chat/account.ini").read_text().endswith("last_seen=now\n")
    assert (left / ".local/share/chat/logs/new.log").is_file()
    assert not (left / ".local/share/chat/logs/old.log").exists()


def test_a_named_profile_gets_the_trust_stores_too(tmp_path, ca, start):
    fs = _guest(tmp_path / "run", "v", 0, ca, start)
    out = subprocess.run(["certutil", "-L", "-d", f"sql:{fs.home / truststores.NSS_DB}"],
                         capture_output=True, text=True, check=True).stdout
    assert truststores.NICKNAME in out


def test_a_profile_with_its_own_nss_database_keeps_its_certificates(tmp_path, ca, start):
    other, _ = tlskit.make_ca(tmp_path / "other", "an app's own CA")
    db = start / truststores.NSS_DB
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-n", "own", "-t", "C,,", "-i",
                    str(other)], check=True)
    fs = _guest(tmp_path / "run", "v", 0, ca, start)
    out = subprocess.run(["certutil", "-L", "-d", f"sql:{fs.home / truststores.NSS_DB}"],
                         capture_output=True, text=True, check=True).stdout
    assert truststores.NICKNAME in out and "own" in out.split()


def test_a_profile_goes_into_a_fresh_home_only(tmp_path, ca, start):
    _guest(tmp_path / "run", "v", 0, ca)
    with pytest.raises(LabError, match="fresh home only"):
        _guest(tmp_path / "run", "v", 0, ca, start)


def test_an_unreadable_profile_is_one_clear_error(tmp_path, ca):
    with pytest.raises(LabError, match="cannot copy the starting profile"):
        _guest(tmp_path / "run", "v", 0, ca, tmp_path / "no-such-profile")


# the system's read-only parts of /var a desktop reads: fontconfig's cache (without it every
# guest rebuilt the font cache in its home at its app's first start), dbus's machine id, xkb
VAR_SHARES = [v for v in ("/var/cache/fontconfig", "/var/lib/dbus", "/var/lib/xkb")
              if Path(v).is_dir() and os.listdir(v)]


@pytest.mark.parametrize("folder", VAR_SHARES)
def test_the_system_folders_of_var_a_desktop_reads_are_there_read_only(tmp_path, folder):
    fs = _guest(tmp_path / "run", "v", 5, None)
    out = _sh(fs, f"ls -A {folder} | wc -l; touch {folder}/x 2>/dev/null && echo wrote "
                  "|| echo refused").split()
    assert out == [str(len(os.listdir(folder))), "refused"], (
        f"the guest sees {out[0]} of the {len(os.listdir(folder))} entries of {folder} "
        f"(and {out[1]} a new file there)")


def _host_font_cache_is_current(tmp: Path) -> bool:
    """Whether fontconfig on the host, with an empty home, needs no cache of its own."""
    home = tmp / "host-home"
    home.mkdir()
    subprocess.run(["fc-list"], env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
                   capture_output=True, timeout=120)
    return not list(home.rglob("*cache*"))


@pytest.mark.skipif(shutil.which("fc-list") is None or "/var/cache/fontconfig" not in VAR_SHARES,
                    reason="needs fontconfig and its system cache")
def test_a_fresh_guest_uses_the_systems_font_cache(tmp_path):
    if not _host_font_cache_is_current(tmp_path):
        pytest.skip("this host's font cache is out of date (`fc-cache` renews it)")
    fs = _guest(tmp_path / "run", "v", 6, None)
    _sh(fs, "fc-list > /dev/null")
    written = sorted(p.name for p in (fs.home / ".cache" / "fontconfig").glob("*cache*"))
    assert written == [], f"a fresh guest rebuilt the font cache in its home: {written}"
