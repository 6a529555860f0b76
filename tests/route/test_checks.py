"""``testbed doctor --scenario`` and the run's pre-flight on a scenario's routes: the uplink of
an ``internet`` route (present, up, a next hop), a tunnel's programs and config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from testbed.route.checks import route_checks
from testbed.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    return tmp_path / "scenarios"


def _with_route(scenarios: Path, route: object) -> Path:
    data = yaml.safe_load((scenarios / "routes-lab.yaml").read_text())
    data["clients"]["cn"]["route"] = route
    path = scenarios / "x.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _lines(path: Path) -> dict[str, tuple[bool, str]]:
    return {c.what: (c.ok, c.detail) for c in route_checks(load_scenario(path))}


@pytest.mark.parametrize("spec,what,ok,detail", [
    ({"uplink": "nope0", "resolver": "192.0.2.53", "gateway": "192.0.2.1"},
     "route internet nope0: uplink nope0 is up", False, "there is no interface nope0"),
    ({"uplink": "lo", "resolver": "192.0.2.53"}, "route internet lo: next hop", False,
     "uplink lo has no default route: name its next hop"),
    ({"uplink": "lo", "resolver": "192.0.2.53", "gateway": "127.0.0.2"},
     "route internet lo: next hop", True, "127.0.0.2"),
    ({"uplink": "lo", "resolver": "192.0.2.53", "gateway": "127.0.0.2"},
     "route internet lo: uplink lo is up", True, ""),
])
def test_an_internet_routes_uplink_is_checked(scenarios, spec, what, ok, detail):
    found = _lines(_with_route(scenarios, {"internet": spec}))
    assert found[what][0] is ok
    assert detail in found[what][1]


def test_a_vpn_route_needs_its_programs_and_a_clean_config(scenarios):
    found = _lines(scenarios / "routes-lab.yaml")
    assert found["route vpn cn-shanghai.conf: its config"][0]
    assert found["route drop"] == (True, "nothing leaves the lab")
    assert {"wireguard-go", "wg"} <= set(found)


def test_doctor_lists_the_routes(scenarios):
    path = _with_route(scenarios, {"internet": {"uplink": "nope0", "resolver": "192.0.2.53"}})
    from testbed.doctor import report

    text, ready = report(path)
    assert not ready
    assert f"routes of {path}: not ready" in text
    assert "MISSING route internet nope0: uplink nope0 is up: there is no interface nope0" \
        in text


def test_a_simulated_scenario_has_no_route_checks():
    assert route_checks(load_scenario(ROOT / "scenarios" / "firefox-lab.yaml")) == []
