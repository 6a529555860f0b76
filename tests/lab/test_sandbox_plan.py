"""What a guest's sandbox and management filter are made of, without root: the bubblewrap
command, the guest's folders and trust store, its uid, and the nftables rules. (The root e2e
family in ``test_guest_isolation`` shows them holding against a hostile guest.)"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from testbed.lab import mgmt, sandbox

TAGS = ["0000", "0001", "abcd", "ffff"]


@pytest.mark.parametrize("tag", TAGS)
def test_every_guest_of_every_run_has_a_uid_of_its_own(tag):
    uids = {sandbox.guest_uid(t, i) for t in TAGS for i in range(sandbox.MAX_GUESTS)}
    assert len(uids) == len(TAGS) * sandbox.MAX_GUESTS
    assert all(1000 < u < 2**31 for u in uids)
    with pytest.raises(Exception, match="at most"):
        sandbox.guest_uid(tag, sandbox.MAX_GUESTS)


@pytest.fixture
def fs(tmp_path):  # type: ignore[no-untyped-def]
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nLAB-CA\n-----END CERTIFICATE-----\n")
    uid = os.getuid()  # (as root any uid would do; as a user only our own can own files)
    return sandbox.prepare(tmp_path / "guests" / "v", uid, ca)


def test_a_guest_gets_home_tmp_runtime_and_its_own_etc(fs):
    for d in (fs.home, fs.tmp, fs.runtime):
        assert d.is_dir() and (d.stat().st_mode & 0o777) == 0o700
    for xdg in (".config", ".cache", ".local/share", ".local/state"):
        assert (fs.home / xdg).is_dir()
    assert (fs.home / ".Xauthority").is_file()
    assert f"{sandbox.USER}:x:{fs.uid}:{fs.uid}:" in (fs.etc / "passwd").read_text()
    assert not (fs.etc / "ssl" / "private").exists()  # the host's keys stay on the host


def test_the_guest_bundle_is_the_systems_plus_the_gateway_ca(fs):
    bundle = (fs.etc / "ssl" / "certs" / "ca-certificates.crt").read_text()
    assert "LAB-CA" in bundle
    if sandbox.SYSTEM_BUNDLE.is_file():
        assert bundle.startswith(sandbox.SYSTEM_BUNDLE.read_text()[:200])
    assert sandbox.SYSTEM_BUNDLE.read_text().count("LAB-CA") == 0  # the host's is untouched


def _pairs(argv: list[str], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


def test_the_sandbox_command(fs):
    shares = sandbox.shares([Path(__file__).parent])
    argv = sandbox.bwrap_argv(fs, "tbed-0000-0", shares, ["app", "--flag"])
    for flag in ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--new-session"):
        assert flag in argv
    assert "--die-with-parent" not in argv
    binds = dict((dst, src) for src, dst in _pairs(argv, "--bind"))
    assert binds == {"/tmp": str(fs.tmp), sandbox.HOME: str(fs.home),
                     fs.runtime_dir: str(fs.runtime)}
    ro = dict((dst, src) for src, dst in _pairs(argv, "--ro-bind"))
    assert ro["/etc/ssl"] == str(fs.etc / "ssl") and ro["/etc/passwd"] == str(fs.etc / "passwd")
    assert "/" not in ro and str(fs.root) not in ro and str(fs.root.parent) not in ro
    tail = argv[argv.index("setpriv"):]
    assert tail[-3:] == ["--", "app", "--flag"]
    for flag in ("--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--clear-groups"):
        assert flag in tail
    assert tail[tail.index("--reuid") + 1] == str(fs.uid)
    # bwrap keeps only what setpriv needs to become the guest's user
    caps = [argv[i + 1] for i, a in enumerate(argv) if a == "--cap-add"]
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert sorted(caps) == ["CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID"]


def test_shares_are_the_python_the_package_and_the_scenario_once_each(tmp_path):
    inner = Path(__file__).parent
    shares = sandbox.shares([inner, inner.parent, Path("/usr/share"), Path("/")])
    assert Path(sys.base_prefix).resolve() in shares or any(
        Path(sys.base_prefix).resolve().is_relative_to(p) for p in shares)
    assert inner not in shares and inner.parent in shares  # nested: once
    assert Path("/") not in shares and not any(p.is_relative_to("/usr") for p in shares)


def test_the_guest_environment_names_the_guests_paths(fs):
    env = sandbox.guest_env(fs, {"PATH": "/root/bin", "SECRET_THING": "x"})
    assert env["HOME"] == sandbox.HOME and env["XDG_RUNTIME_DIR"] == fs.runtime_dir
    assert env["SSL_CERT_FILE"] == str(sandbox.SYSTEM_BUNDLE)
    assert "/root" not in env["PATH"]
    assert not any("TOKEN" in k for k in env)


@pytest.mark.parametrize("port", [8700, 1, 65535])
def test_the_guest_filter_lets_only_the_agent_port_in_from_the_host(port):
    rules = mgmt.guest_rules("172.16.0.1", "172.16.0.2", port)
    assert f'iifname "mgmt0" ip saddr 172.16.0.1 ip daddr 172.16.0.2 tcp dport {port}' in rules
    assert 'oifname "mgmt0" ip saddr 172.16.0.2 ip daddr 172.16.0.1 tcp sport' in rules
    assert rules.count("drop") == 3  # in, out, and forwarding
    assert "ct state established accept" in rules


@pytest.mark.parametrize("tag", TAGS)
def test_the_host_filter_is_named_after_the_run_and_matches_its_links_only(tag):
    rules = mgmt.host_rules(tag, 8700)
    assert f"table inet tb{tag}_mgmt" in rules and mgmt.HOST_TABLE.match(mgmt.host_table(tag))
    assert f'iifname "tb{tag}m*"' in rules and f'oifname "tb{tag}m*"' in rules
    others = [t for t in TAGS if t != tag]
    assert not any(f"tb{o}m" in rules for o in others)
    assert "chain forward" in rules and rules.count("counter drop") == 4
