"""WireGuard configs: the shipped lab pair reads clean, secrets never show, and ``wg setconf``
gets exactly the keys it knows."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from testbed.route.wireguard import Secret, read_config

ROOT = Path(__file__).resolve().parents[2]
EXITS = ROOT / "scenarios" / "lab" / "exits"


def _key(path: Path) -> str:
    m = re.search(r"PrivateKey\s*=\s*(\S+)", path.read_text())
    assert m
    return m.group(1)


@pytest.mark.parametrize("name,server", [("cn-shanghai.conf", False),
                                         ("cn-shanghai-exit.conf", True)])
def test_the_shipped_lab_configs_read_clean(name, server):
    c = read_config(EXITS / name, server=server)
    assert c.problems == ()
    assert c.peers and c.addresses


def test_the_two_lab_ends_are_each_others_peer():
    if shutil.which("wg") is None:
        pytest.skip("needs wg (wireguard-tools)")
    client, exit_ = read_config(EXITS / "cn-shanghai.conf"), \
        read_config(EXITS / "cn-shanghai-exit.conf", server=True)

    def public(c):
        return subprocess.run(["wg", "pubkey"], input=c.private_key.value, text=True,
                              capture_output=True, check=True).stdout.strip()

    assert client.peers[0].public_key == public(exit_)
    assert exit_.peers[0].public_key == public(client)
    assert client.peers[0].endpoint_host == "203.0.113.80"
    assert client.dns == ("10.99.0.1",)


@pytest.mark.parametrize("show", [str, repr, lambda c: str(c.private_key), format])
def test_a_private_key_never_shows(show):
    c = read_config(EXITS / "cn-shanghai.conf")
    key = _key(EXITS / "cn-shanghai.conf")
    assert key not in show(c)
    assert key not in f"{c.private_key}" and "***" in f"{c.private_key}"


def test_setconf_carries_the_keys_wg_knows_and_nothing_of_wg_quick():
    c = read_config(EXITS / "cn-shanghai.conf")
    text = c.setconf()
    assert _key(EXITS / "cn-shanghai.conf") in text  # for wg's standard input only
    keys = {line.split("=")[0].strip() for line in text.splitlines() if "=" in line}
    assert keys == {"PrivateKey", "PublicKey", "Endpoint", "AllowedIPs", "PersistentKeepalive"}


def test_secret_is_a_string_that_hides_itself():
    s = Secret("abc")
    assert s.value == "abc" and str(s) == "***" and "abc" not in repr(s)
