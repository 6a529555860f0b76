"""A scenario mixing providers: VMs and lab guests of one run behind one gateway."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed._errors import LabError
from testbed.orchestrator.run import start_guests
from testbed.provider.fakes import FakeGateway, FakePool
from testbed.provider.gateway import guest_address
from testbed.provider.mixed import MixedPool

VARIANTS = ["regular", "tom-zh", "tom-en", "control"]


def pools(tmp_path: Path, **kw: object) -> tuple[FakeGateway, FakePool, FakePool]:
    gw = FakeGateway(tmp_path)
    return gw, FakePool(gw, **kw.get("vms", {})), FakePool(gw, **kw.get("lab", {}))  # type: ignore[arg-type]


@pytest.mark.parametrize("route", [
    {"regular": "vagrant", "tom-zh": "lab"},
    {"regular": "lab", "tom-zh": "vagrant"},
    {"regular": "vagrant", "tom-zh": "vagrant", "tom-en": "lab", "control": "lab"},
    {"regular": "lab", "tom-zh": "vagrant", "tom-en": "lab", "control": "vagrant"},
])
def test_each_guest_comes_from_its_pool_with_its_scenario_address(tmp_path, route):
    gw, vms, lab = pools(tmp_path)
    pool = MixedPool({"vagrant": vms, "lab": lab}, route)
    pool.prepare()
    assert vms.prepared and lab.prepared
    guests = start_guests(pool, list(route), None, 10)
    assert sorted(vms.started) == sorted(v for v, p in route.items() if p == "vagrant")
    assert sorted(lab.started) == sorted(v for v, p in route.items() if p == "lab")
    addresses = [guests[v].address for v in route]
    assert addresses == [guest_address(i) for i in range(len(route))]  # one network, no clash
    assert len({port for port, _, _ in gw.plugs}) == len(route)
    pool.teardown()
    assert vms.teardowns == lab.teardowns == 1


@pytest.mark.parametrize("flags,expected", [((True, True), True), ((True, False), False),
                                            ((False, False), False)])
def test_guests_start_at_once_only_where_every_pool_allows(tmp_path, flags, expected):
    gw = FakeGateway(tmp_path)
    pool = MixedPool({"vagrant": FakePool(gw, concurrent=flags[0]),
                      "lab": FakePool(gw, concurrent=flags[1])}, {"a": "vagrant", "b": "lab"})
    assert pool.concurrent is expected
    assert pool.name == "vagrant+lab"


def test_the_longest_start_timeout_is_the_pools(tmp_path):
    gw = FakeGateway(tmp_path)
    pool = MixedPool({"vagrant": FakePool(gw, start_timeout=3600),
                      "lab": FakePool(gw, start_timeout=45)}, {"a": "vagrant", "b": "lab"})
    assert pool.start_timeout == 3600


def test_every_pool_is_torn_down_even_when_one_fails(tmp_path):
    gw = FakeGateway(tmp_path)

    class Broken(FakePool):
        def teardown(self) -> None:
            super().teardown()
            raise LabError("the VM would not power off")

    vms, lab = Broken(gw), FakePool(gw)
    pool = MixedPool({"vagrant": vms, "lab": lab}, {"a": "vagrant", "b": "lab"})
    with pytest.raises(LabError, match="would not power off"):
        pool.teardown()
    assert vms.teardowns == lab.teardowns == 1


def test_a_failing_guest_fails_in_its_own_pool(tmp_path):
    gw = FakeGateway(tmp_path)
    vms, lab = FakePool(gw, fail={"regular": "vagrant up failed"}), FakePool(gw)
    pool = MixedPool({"vagrant": vms, "lab": lab}, {"regular": "vagrant", "tom-zh": "lab"})
    with pytest.raises(LabError, match="vagrant up failed"):
        pool.start_guest("regular", 0, None)
    assert pool.start_guest("tom-zh", 1, None).address == guest_address(1)


def test_a_route_to_no_pool_is_refused(tmp_path):
    gw = FakeGateway(tmp_path)
    with pytest.raises(ValueError, match="no pool docker"):
        MixedPool({"lab": FakePool(gw)}, {"a": "lab", "b": "docker"})


@pytest.mark.parametrize("scenario,expected", [
    ("skype-2013-vm.yaml", {"regular": "vagrant", "tom-zh": "lab"}),
    ("vagrant-linux-lab.yaml", None),
    ("skype-2013.yaml", None),
])
def test_a_vagrant_scenario_mixes_pools_when_a_client_has_no_vm(tmp_path, scenario, expected):
    from testbed.lab.provider import LabPool
    from testbed.provider import POOLS, Context
    from testbed.scenario import load_scenario
    from testbed.vagrant.provider import VagrantPool

    root = Path(__file__).resolve().parents[2]
    s = load_scenario(root / "scenarios" / scenario)
    pool = POOLS["vagrant"].make(Context(tmp_path, s, tmp_path, print), FakeGateway(tmp_path))
    if expected is None:
        assert isinstance(pool, VagrantPool)
    else:
        assert isinstance(pool, MixedPool) and pool.route == expected
        assert isinstance(pool.pools["vagrant"], VagrantPool)
        assert isinstance(pool.pools["lab"], LabPool)
