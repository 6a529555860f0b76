"""Hostile guests, for real: two lab guests, one of them probing every way around the gateway.

A guest's app (started by its agent, as any app under test is) connects, sends and pings to
listeners on the host's management address, on the host's end of the other guest's link, on
the host's real addresses and on the other guest's management and experiment addresses; tries
to add routes, flush its filter, enter another network namespace; and probes again. Nothing
may reach a listener. Then root itself breaks the guest's own filter and routes the guest's
traffic over the management link: the host's filter alone must still stop every probe. The
same guests show what their programs can see: a uid of their own, no capabilities, their own
processes, /tmp and home only, the gateway's CA in their system bundle, no agent token.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from testbed.lab import mgmt, netns, sandbox
from testbed.lab.internet_map import load_internet
from testbed.lab.provider import LabPool
from testbed.provider.gateway import NetnsGateway

from . import escape_kit
from .conftest import ROOT, needs_root

pytestmark = [needs_root, pytest.mark.e2e, pytest.mark.root]

CA_MARKER = "TESTBED-GATEWAY-CA-FOR-ISOLATION-TESTS"
INSPECT = Path(__file__).with_name("guest_inspect.py")


def _inspect(guest, other: str, run: Path) -> dict:  # type: ignore[no-untyped-def]
    argv = [guest.env["python"], "-c", INSPECT.read_text(), "inspect.json", other, CA_MARKER,
            str(run), str(run / "guests" / other), str(ROOT / "Makefile"), str(ROOT / ".git")]
    answer = guest.agent.run_steps([{"run": argv}], {})
    assert answer["ok"], answer["error"]
    return escape_kit.wait_for(str(guest.workdir / "inspect.json"), 60)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("isolation")
    ca = work / "gateway-ca.pem"
    ca.write_text(f"-----BEGIN CERTIFICATE-----\n{CA_MARKER}\n-----END CERTIFICATE-----\n")
    gw = NetnsGateway(work, load_internet(ROOT / "scenarios" / "lab" / "internet-2013.yaml"))
    pool = LabPool(work, gw, shares=(ROOT / "scenarios",))
    out: dict = {"work": work, "tag": gw.tag, "pool": pool}
    try:
        gw.start()
        alpha = pool.start_guest("alpha", 0, ca)
        beta = pool.start_guest("beta", 1, ca)
        out["guests"] = {"alpha": alpha, "beta": beta}
        out["uids"] = {"alpha": sandbox.guest_uid(gw.tag, 0), "beta": sandbox.guest_uid(gw.tag, 1)}
        out["inspect"] = {"alpha": _inspect(alpha, "beta", work),
                          "beta": _inspect(beta, "alpha", work)}
        out["sandboxed"] = escape_kit.probe_round(pool, alpha, pool.guests[1], "sandboxed")
        out["host filter before"] = mgmt.dropped(None, mgmt.host_table(gw.tag))
        # root breaks the guest's side: its filter gone, its traffic routed over mgmt0
        alpha_ns = pool.guests[0]
        mgmt.nft("delete", "table", "inet", mgmt.GUEST_TABLE, ns=alpha_ns)
        host_b, guest_b = pool._mgmt_subnet(1)
        for address in {host_b, guest_b, "10.77.0.11", *escape_kit.host_addresses()}:
            netns.sh("ip", "route", "replace", f"{address}/32", "dev", "mgmt0", ns=alpha_ns)
        out["host filter only"] = escape_kit.probe_round(pool, alpha, pool.guests[1], "broken")
        out["host filter after"] = mgmt.dropped(None, mgmt.host_table(gw.tag))
        yield out
    finally:
        pool.teardown()
        gw.teardown()


ROUNDS = ("sandboxed", "host filter only")


@pytest.mark.parametrize("round_name", ROUNDS)
def test_no_byte_from_a_guest_reaches_a_listener(lab, round_name):
    result = lab[round_name]
    assert result["received"] == {"host": {}, "other guest": {}}, (
        f"{round_name}: bytes from guest alpha reached listeners outside the gateway: "
        f"{result['received']}")


@pytest.mark.parametrize("round_name", ROUNDS)
@pytest.mark.parametrize("kind", ["tcp", "udp", "icmp"])
@pytest.mark.parametrize("label", ["host-mgmt", "host-end-of-other-guest-link",
                                   "other-guest-mgmt", "other-guest-eth0", "host-real"])
def test_every_probe_is_blocked(lab, round_name, kind, label):
    rounds = lab[round_name]["probes"]["rounds"]
    tried = {k: v for r in rounds for k, v in r.items() if k.startswith(f"{kind} {label} ")}
    if not tried:
        pytest.skip(f"no {kind} target {label} on this machine")
    through = {k: v for k, v in tried.items() if not v.startswith("blocked")}
    assert not through, f"{round_name}: probes that got through: {through}"


def test_the_host_filter_is_what_stopped_the_probes_once_the_guest_side_was_gone(lab):
    assert lab["host filter after"] > lab["host filter before"], (
        "the host's management filter dropped nothing although the guest's filter was gone")


@pytest.mark.parametrize("attack", list(escape_kit.ATTACKS))
def test_what_a_hostile_guest_tries_fails(lab, attack):
    attacks = lab["sandboxed"]["probes"]["attacks"]
    cmd = escape_kit.ATTACKS[attack].split("{")[0]
    tried = {k: v for k, v in attacks.items() if k.startswith(cmd)}
    assert tried, f"{attack} was not tried"
    for line, outcome in tried.items():
        assert not outcome.startswith("exit 0"), f"a guest could {attack}: `{line}` succeeded"


@pytest.mark.parametrize("variant", ["alpha", "beta"])
def test_a_guest_is_an_unprivileged_user_of_its_own(lab, variant):
    seen = lab["inspect"][variant]
    assert seen["uid"] == seen["euid"] == lab["uids"][variant] != 0
    assert seen["CapEff"] == seen["CapPrm"] == seen["CapBnd"] == "0000000000000000"
    assert seen["NoNewPrivs"] == "1"
    assert seen["shadow"] != "readable"
    assert lab["uids"]["alpha"] != lab["uids"]["beta"]


@pytest.mark.parametrize("variant", ["alpha", "beta"])
def test_a_guest_sees_only_its_own_processes(lab, variant):
    seen = lab["inspect"][variant]
    assert len(seen["pids"]) < 15, f"{variant} sees {len(seen['pids'])} processes"
    assert "bwrap" in seen["pid 1"], f"PID 1 of {variant} is {seen['pid 1']!r}"


@pytest.mark.parametrize("variant", ["alpha", "beta"])
def test_a_guest_has_its_own_files(lab, variant):
    seen, other = lab["inspect"][variant], "beta" if variant == "alpha" else "alpha"
    assert seen["home"] == sandbox.HOME and seen["home writable"]
    assert seen["run folder visible"] == [], f"{variant} sees {seen['run folder visible']}"
    assert seen["other guest's marks in /tmp"] == []
    marks = [n for n in seen["tmp"] if n.startswith("mark-")]
    assert len(marks) == 1, f"{variant}'s /tmp holds {marks}: only its own mark belongs there"
    assert f"{sandbox.USER}:x:{lab['uids'][variant]}:" in seen["passwd"]
    assert not any(str(lab["uids"][other]) in line for line in seen["passwd"].splitlines())


@pytest.mark.parametrize("variant", ["alpha", "beta"])
def test_a_guest_trusts_the_gateway_ca_through_the_system_bundle(lab, variant):
    seen = lab["inspect"][variant]
    assert seen["CA in the system bundle"]
    assert seen["system CAs in the bundle"] > 10  # the system's CAs are still there


@pytest.mark.parametrize("variant", ["alpha", "beta"])
def test_a_guest_has_a_desktop_session(lab, variant):
    seen = lab["inspect"][variant]
    assert seen["X socket"] and seen["session bus socket"] and seen["session bus"]
    assert seen["xdg"] and all(seen["xdg"].values()), seen["xdg"]
    assert seen["locale"] == "C.UTF-8" and seen["fonts"] and seen["shared memory writable"]


@pytest.mark.parametrize("variant", ["alpha", "beta"])
def test_the_app_cannot_get_the_agent_token(lab, variant):
    seen = lab["inspect"][variant]
    assert not seen["token in environment"]
    assert seen["agent environ"] != "readable" and seen["agent memory"] != "readable"
    assert max(seen["open fds"]) <= 3, f"the app inherited descriptors {seen['open fds']}"


def test_a_guests_x_server_lives_in_its_private_tmp(lab):
    uids = set(lab["uids"].values())
    on_host = [p for p in [*Path("/tmp").glob(".X*-lock"), *Path("/tmp/.X11-unix").glob("X*")]
               if p.lstat().st_uid in uids]
    assert on_host == [], f"a guest's X server wrote to the host's /tmp: {on_host}"
    for variant in ("alpha", "beta"):
        assert (lab["work"] / "guests" / variant / "tmp" / ".X11-unix").is_dir()


def test_teardown_leaves_nothing_of_the_guests(lab):
    pool, tag = lab["pool"], lab["tag"]
    pool.teardown()
    lab["pool"].gateway.teardown()
    assert pool.killed == [], f"a guest's programs did not stop on SIGTERM: {pool.killed}"
    assert not [ns for ns in netns.namespaces() if ns.startswith(f"{netns.NS_PREFIX}{tag}-")]
    assert not [link for link in netns.root_links() if link.startswith(f"tb{tag}m")]
    assert mgmt.host_table(tag) not in mgmt.tables()
    uids = set(lab["uids"].values())
    owned = [p for p in (lab["work"] / "guests").rglob("*") if p.lstat().st_uid in uids]
    assert owned == [], f"files still owned by a guest's uid: {owned[:5]}"
    procs = subprocess.run(["ps", "-eo", "uid="], capture_output=True, text=True).stdout
    assert not uids & {int(u) for u in procs.split()}, "a process of a guest's uid is running"
    # kept for inspection: the guests' homes, /tmp and logs
    assert (lab["work"] / "guests" / "alpha" / "home" / "inspect.json").is_file()


def test_a_killed_runs_host_filter_is_swept_with_its_other_leftovers():
    tag = "fffe"
    mgmt.guard_host(tag, 8700)
    try:
        assert mgmt.host_table(tag) in mgmt.tables()
        removed = netns.sweep(tag)
        assert f"nftables table inet {mgmt.host_table(tag)}" in removed
        assert mgmt.host_table(tag) not in mgmt.tables()
    finally:
        mgmt.drop_host(tag)
