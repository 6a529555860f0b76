"""The roles' seam: one registry of pools, one address plan, fakes that honour the interface."""

from __future__ import annotations

import ast
import ipaddress
from pathlib import Path

import pytest

from testbed._errors import AgentError, LabError
from testbed.agent.client import AGENT_PORT
from testbed.provider import POOLS, get_pool
from testbed.provider.fakes import FakeAgent, FakeGateway, FakePool, action_of, done, failed
from testbed.provider.gateway import GATEWAY_IP, GUEST_NET, MITM_PORT, guest_address

PACKAGE = Path(__file__).resolve().parents[2] / "testbed"


def test_the_active_pools_are_listed_in_one_place():
    assert sorted(POOLS) == ["lab", "vagrant"]
    assert get_pool("lab") is POOLS["lab"]
    with pytest.raises(LabError, match="provider 'aws' is not available here "
                                       r"\(available: lab, vagrant\)"):
        get_pool("aws")


def test_the_address_plan_gives_every_guest_its_own_address_on_the_gateways_network():
    net = ipaddress.ip_network(GUEST_NET)
    addresses = [guest_address(i) for i in range(64)]
    assert len(set(addresses)) == 64 and GATEWAY_IP not in addresses
    assert all(ipaddress.ip_address(a) in net for a in [*addresses, GATEWAY_IP])
    assert MITM_PORT != AGENT_PORT


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_the_pools_do_not_reach_into_each_other_and_the_orchestrator_names_none():
    assert not any(m.startswith("testbed.lab.provider")
                   for p in (PACKAGE / "vagrant").glob("*.py") for m in _imports(p))
    assert not any(m.startswith("testbed.vagrant") for m in _imports(PACKAGE / "lab" /
                                                                     "provider.py"))
    for name in ("run.py", "drive.py", "backend.py"):
        source = (PACKAGE / "orchestrator" / name).read_text()
        assert "provider ==" not in source and 'getattr(' not in source
        assert not any(m.startswith(("testbed.vagrant", "testbed.lab.provider"))
                       for m in _imports(PACKAGE / "orchestrator" / name))


def test_the_vagrant_commands_do_not_import_the_cli():
    assert "testbed.cli" not in _imports(PACKAGE / "vagrant" / "commands.py")


def test_the_fake_pool_plugs_its_guests_into_the_gateway_and_tears_down(tmp_path):
    gateway = FakeGateway(tmp_path)
    pool = FakePool(gateway, fail={"b": "no box"})
    guest = pool.start_guest("a", 0, None)
    assert guest.address == guest_address(0) and guest.agent.health()["ok"]
    with pytest.raises(LabError, match="no box"):
        pool.start_guest("b", 1, None)
    assert gateway.plugs == [("g0", "eth0", "fake-a"), ("g1", "eth0", "fake-b")]
    pool.teardown()
    assert pool.running == [] and pool.teardowns == 1


def test_the_fake_gateway_runs_stand_ins_the_capture_classes_accept(tmp_path):
    from testbed.capture import Mitmdump, Tcpdump

    gateway = FakeGateway(tmp_path)
    handle = gateway.start()
    dump = Tcpdump(gateway, handle.capture_interface, tmp_path / "g.pcap", tmp_path / "t.log")
    dump.start()
    mitm = Mitmdump(gateway, handle.mitm_port, tmp_path / "flows", tmp_path / "ca",
                    tmp_path / "m.log")
    mitm.start()
    assert mitm.ca_cert.is_file() and (tmp_path / "g.pcap").stat().st_size == 24
    assert mitm.stop() and dump.stop().complete
    gateway.teardown()


def test_the_fake_agent_answers_with_its_handler():
    steps = [{"click_image": "x.png"}, {"screenshot": "login"}]
    agent = FakeAgent("a", lambda s: failed(s, "no x.png") if action_of(s) == "login"
                      else done(s))
    answer = agent.run_steps(steps, {})
    assert not answer["ok"] and answer["error"] == "no x.png"
    assert answer["screenshots"]["failure"].startswith(b"\x89PNG")
    assert done(steps)["screenshots"]["login"].startswith(b"\x89PNG")
    assert agent.calls == [steps]
    with pytest.raises(AgentError):
        FakeAgent("b", ready=False).health()
