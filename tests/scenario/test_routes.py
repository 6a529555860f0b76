"""``route:`` in a scenario and per client: what loads, and every kind of mistake located at
its FILE:LINE and worded, never quoting a key of the tunnel's config."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from testbed.scenario import check_files, load_scenario
from tests.scenario.fuzzing import cli_outcome

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scenarios"
CONF = "lab/exits/cn-shanghai.conf"

BASE = """\
scenario: x
version: 1
provider: lab
lab: {internet: lab/internet-2013.yaml}
ROUTE
clients:
  home:
    app: refclient
    build: lab/builds/regular.yaml
    account: {user: alice}
  away:
    app: refclient
    build: lab/builds/regular.yaml
    account: {user: bob}
CLIENT
sessions:
  - name: login
    steps:
      - {variant: home, action: login}
"""


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(SEED, tmp_path / "scenarios")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "scenarios"


def scenario(route: str = "", client: str = "") -> str:
    text = BASE.replace("ROUTE\n", route + "\n" if route else "")
    text = text.replace("CLIENT\n", textwrap.indent(client, "    ") + "\n" if client else "")
    Path("scenarios/x.yaml").write_text(text)
    return "scenarios/x.yaml"


def problems(path: str) -> list[str]:
    return [str(p) for p in check_files([path])]


# -- what loads ------------------------------------------------------------------------------
@pytest.mark.parametrize("route,client,home,away", [
    ("", "", "simulated", "simulated"),
    ("route: simulated", "", "simulated", "simulated"),
    ("route: drop", "", "drop", "drop"),
    ("", "route: drop", "simulated", "drop"),
    ("route: drop", "route: simulated", "drop", "simulated"),
    ("", f"route: {{vpn: {{config: {CONF}}}}}", "simulated", "vpn cn-shanghai.conf"),
    (f"route: {{vpn: {{config: {CONF}, resolver: 10.99.0.1}}}}", "route: simulated",
     "vpn cn-shanghai.conf", "simulated"),
    ("route: {internet: {uplink: eth1, resolver: 192.0.2.53}}", "",
     "internet eth1", "internet eth1"),
])
def test_each_variant_gets_its_route(tree, route, client, home, away):
    s = load_scenario(scenario(route, client))
    assert (s.route_of("home").label, s.route_of("away").label) == (home, away)


def test_a_vpn_route_keeps_its_settings(tree):
    s = load_scenario(scenario("", f"route: {{vpn: {{config: {CONF}, resolver: 10.99.0.1, "
                                   "echo: 'http://a.lab.example/ip'}}"))
    r = s.route_of("away")
    assert (r.kind, r.config, r.resolver, r.echo) == (
        "vpn", (tree / CONF).resolve(), "10.99.0.1", "http://a.lab.example/ip")
    assert r.line == 14
    assert r.to_json()["label"] == "vpn cn-shanghai.conf"


def test_the_shipped_routes_scenario_validates():
    assert check_files([str(SEED / "routes-lab.yaml")]) == []


# -- mistakes --------------------------------------------------------------------------------
@pytest.mark.parametrize("route,line,words", [
    ("route: vpnn", 5, "route: unknown route 'vpnn': expected simulated, drop"),
    ("route: vpn", 5, "unknown route 'vpn' (a vpn route needs its settings)"),
    ("route: 3", 5, "route: expected simulated, drop, {vpn: {config: FILE}}"),
    ("route: {vpn: x.conf}", 5, "route.vpn: expected a mapping of config, resolver, echo, "
     "uplink, gateway"),
    ("route: {vpn: {}}", 5, "route.vpn: a vpn route needs 'config'"),
    ("route: {vpn: {config: nope.conf}}", 5, "route.vpn.config: file not found:"),
    ("route: {vpn: {config: x.ovpn}}", 5, "OpenVPN configs are not supported yet"),
    (f"route: {{vpn: {{config: {CONF}, resolver: dns.example}}}}", 5,
     "resolver 'dns.example' is not an IP address"),
    (f"route: {{vpn: {{config: {CONF}, echo: 'ftp://x/ip'}}}}", 5, "is not an http(s) URL"),
    (f"route: {{vpn: {{config: {CONF}, uplonk: eth0}}}}", 5,
     "unknown key 'uplonk' of a vpn route"),
    ("route: {internet: {uplink: eth1}}", 5, "a internet route needs 'resolver'"),
    ("route: {internet: {uplink: 'not an if', resolver: 192.0.2.1}}", 5,
     "uplink 'not an if' is not an interface name"),
    ("route: {vpn: {config: a}, drop: {}}", 5, "route: expected simulated, drop"),
    ("route: {tor: {}}", 5, "unknown route 'tor'"),
])
def test_a_bad_route_is_one_located_sentence(tree, route, line, words):
    found = problems(scenario(route))
    assert len(found) == 1, found
    assert found[0].startswith(f"scenarios/x.yaml:{line}: ")
    assert words in found[0]


def test_a_bad_client_route_names_the_client(tree):
    (found,) = problems(scenario("", "route: {vpn: {}}"))
    assert found.startswith("scenarios/x.yaml:14: clients.away.route.vpn: a vpn route needs")


def _conf(tree: Path, text: str) -> str:
    (tree / "lab" / "exits" / "bad.conf").write_text(textwrap.dedent(text))
    return scenario("route: {vpn: {config: lab/exits/bad.conf}}")


KEY = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd28="  # 32 bytes of base64, not a real key
GOOD = f"""\
[Interface]
PrivateKey = {KEY}
Address = 10.99.0.2/32
[Peer]
PublicKey = {KEY}
Endpoint = 192.0.2.1:51820
AllowedIPs = 0.0.0.0/0
"""


@pytest.mark.parametrize("old,new,line,words", [
    (f"PrivateKey = {KEY}\n", "", None, "[Interface] has no PrivateKey"),
    (f"PrivateKey = {KEY}", "PrivateKey = abc", 2, "PrivateKey is not a WireGuard key"),
    ("Address = 10.99.0.2/32\n", "", None, "[Interface] has no Address"),
    ("Address = 10.99.0.2/32", "Address = ten", 3, "Address 'ten' is not an address"),
    ("Endpoint = 192.0.2.1:51820\n", "", None, "[Peer] has no Endpoint"),
    ("Endpoint = 192.0.2.1:51820", "Endpoint = 192.0.2.1", 6, "is not HOST:PORT"),
    ("[Peer]", "[Pear]", 4, "unknown section [Pear]"),
    ("AllowedIPs", "AllowedIP", 7, "unknown key 'AllowedIP' in [Peer]"),
    ("Address = 10.99.0.2/32", "Address = 10.99.0.2/32\nPostUp = iptables -F", 4,
     "postup: shell hooks are not run by testbed"),
    ("Address = 10.99.0.2/32", "Address = 10.99.0.2/32\nDNS = 1.1.1.1, corp.example", 4,
     "DNS 'corp.example' is not an IP address"),
    (f"PublicKey = {KEY}", "PublicKey = nope", 5, "[Peer] PublicKey is missing or not a"),
])
def test_a_bad_tunnel_config_is_located_in_its_own_file(tree, old, new, line, words):
    found = problems(_conf(tree, GOOD.replace(old, new)))
    if old == "[Peer]":  # its keys then belong to no peer: one more problem, said once
        peerless = f"{(tree / 'lab/exits/bad.conf').resolve()}: no [Peer] section"
        assert peerless in found
        found.remove(peerless)
    assert len(found) == 1, found
    where = str((tree / "lab" / "exits" / "bad.conf").resolve())
    assert found[0].startswith(f"{where}:{line}: " if line else f"{where}: ")
    assert words in found[0]
    assert KEY not in found[0]


def test_a_bad_route_exits_2_with_one_line_per_problem_and_no_traceback(tree):
    path = _conf(tree, GOOD.replace(f"PrivateKey = {KEY}", "PrivateKey = abc"))
    out = cli_outcome(["validate", path])
    assert (out.verdict, out.code) == ("rejected", 2), out.detail
    assert re.search(r"bad\.conf:2: PrivateKey is not a WireGuard key", out.detail)
    assert KEY not in out.detail


def test_a_lab_exit_row_names_its_config(tree):
    internet = tree / "lab" / "internet-2013.yaml"
    internet.write_text(internet.read_text().replace("exits/cn-shanghai-exit.conf",
                                                     "exits/missing.conf"))
    found = [p for p in problems(str(internet)) if "exit" in p]
    assert len(found) == 1 and "servers[63].exit.wireguard: file not found" in found[0]
