"""``testbed submit``: a job no live worker can run is refused at submit time with each
worker's reason, and then nothing at all is submitted; ``testbed jobs``/``submit`` against a
broker that is not there say so in one line."""

from __future__ import annotations

import pytest

from testbed.cli import main as cli
from testbed.fleet.capabilities import Capabilities
from testbed.fleet.engine import connect, key
from testbed.fleet.ledger import Ledger
from tests.fleet.conftest import ROOT, wait_for

SEED = ROOT / "scenarios" / "skype-2013-lab.yaml"


def advertise(url: str, name: str, **kw) -> None:
    caps = dict(worker=name, host="h", providers=("lab",), boxes=(), routes=("simulated",),
                exits=(), cores=2, memory_mb=1024, concurrency=1, problems={})
    connect(url).set(key("worker", name), Capabilities(**(caps | kw)).dumps(), ex=60)


def submit(url: str, *args: str) -> int:
    return cli(["submit", str(SEED), "--broker", url, "--scenarios-root",
                str(ROOT / "scenarios"), *args])


@pytest.mark.parametrize(("adverts", "flags", "why"), [
    ({}, [], "no live worker (start one: testbed worker --broker URL)"),
    ({"a": {}}, ["--route", "vpn"], "a: route vpn not offered (routes: simulated)"),
    ({"a": {}, "b": {"routes": ("vpn",)}}, ["--route", "vpn", "--exit", "CN"],
     "a: route vpn not offered (routes: simulated); b: exit CN not offered "
     "(exit countries: none)"),
    ({"a": {"providers": (), "problems": {"lab": "root (network namespaces, tcpdump)"}}}, [],
     "a: provider lab unavailable (root (network namespaces, tcpdump))"),
])
def test_a_job_no_live_worker_can_run_is_refused_with_the_reason(broker, capsys, adverts,
                                                                   flags, why):
    for name, kw in adverts.items():
        advertise(broker.url, name, **kw)
    assert submit(broker.url, *flags) == 2
    err = capsys.readouterr().err
    assert err.startswith("testbed: 1 of 1 job(s) cannot run on any live worker; nothing "
                          "was submitted")
    assert why in err
    assert Ledger(connect(broker.url)).all() == []
    assert not [q for q in connect(broker.url).keys("fleet.*")], "no message queued"


def test_a_real_worker_is_asked_and_a_runnable_job_goes_through(broker, workers, capsys):
    workers("alpha")
    wait_for("alpha's advert", lambda: connect(broker.url).get(key("worker", "alpha")), 30)
    assert submit(broker.url, "--exit", "CN") == 2
    assert "alpha: exit CN not offered (exit countries: none)" in capsys.readouterr().err
    assert submit(broker.url, "--route", "simulated", "--provider", "lab") == 0
    assert "1 job(s) submitted" in capsys.readouterr().out


def test_a_provider_constraint_the_scenario_contradicts_is_a_user_mistake(broker, capsys):
    assert submit(broker.url, "--provider", "vagrant") == 2
    assert "constraint provider: vagrant, but the scenario runs on provider lab" in \
        capsys.readouterr().err


@pytest.mark.parametrize("command", [["jobs"], ["submit", str(SEED)]])
def test_an_unreachable_broker_is_one_line(command, capsys):
    code = cli([*command, "--broker", "redis://127.0.0.1:1/0", "--scenarios-root",
                str(ROOT / "scenarios")] if command[0] == "submit" else
               [*command, "--broker", "redis://127.0.0.1:1/0"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "broker redis://127.0.0.1:1/0 cannot be reached" in err


def test_a_missing_matrix_file_is_a_user_mistake(tmp_path, capsys):
    assert cli(["submit", str(tmp_path / "nope.yaml")]) == 2
    assert "no such scenario or matrix file" in capsys.readouterr().err
