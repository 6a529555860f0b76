"""What a worker offers and which jobs it takes: providers passing pre-flight, boxes, routes,
exit countries; the worker config file."""

from __future__ import annotations

import pytest

from testbed.fleet.capabilities import Capabilities, WorkerConfig, probe, refusal
from testbed.fleet.engine import FleetInputError
from testbed.fleet.spec import JobSpec


def caps(name: str = "w1", **kw) -> Capabilities:
    base = dict(worker=name, host="h", providers=("lab",), boxes=(), routes=("simulated",),
                exits=(), cores=2, memory_mb=1024, concurrency=1,
                problems={"vagrant": "vagrant not found"})
    return Capabilities(**(base | kw))


def job(**kw) -> JobSpec:
    return JobSpec(**({"job_id": "j1", "scenario": "s.yaml", "sha256": "x", "provider": "lab"}
                      | kw))


@pytest.mark.parametrize(("worker", "spec", "why"), [
    (caps(), job(), None),
    (caps(), job(route="simulated"), None),
    (caps(), job(provider="vagrant"), "provider vagrant unavailable (vagrant not found)"),
    (caps(), job(route="vpn"), "route vpn not offered (routes: simulated)"),
    (caps(), job(exit="CN"), "exit CN not offered (exit countries: none)"),
    (caps(routes=("simulated", "vpn"), exits=("CN",)), job(route="vpn", exit="CN"), None),
    (caps(routes=("vpn",), exits=("US",)), job(route="vpn", exit="CN"),
     "exit CN not offered (exit countries: US)"),
    (caps(providers=("lab", "vagrant"), boxes=("debian12",)),
     job(provider="vagrant", boxes=("debian12",)), None),
    (caps(providers=("lab", "vagrant"), boxes=()), job(provider="vagrant", boxes=("win10",)),
     "vagrant box(es) win10 not present"),
])
def test_a_worker_takes_only_jobs_it_can_run(worker, spec, why):
    assert worker.cannot_run(spec) == why


def test_queues_cover_every_constraint_combination_the_worker_meets():
    w = caps(routes=("simulated", "vpn"), exits=("CN",))
    assert w.queues() == sorted([
        "fleet.lab.any.any", "fleet.lab.any.CN", "fleet.lab.simulated.any",
        "fleet.lab.simulated.CN", "fleet.lab.vpn.any", "fleet.lab.vpn.CN"])
    for spec in (job(), job(route="vpn"), job(route="vpn", exit="CN"), job(exit="CN")):
        assert spec.queue in w.queues()


def test_refusal_names_every_workers_reason():
    assert refusal(job(), []) is not None and "no live worker" in refusal(job(), [])
    why = refusal(job(route="vpn", exit="CN"), [caps("a"), caps("b", routes=("vpn",))])
    assert why == ("a: route vpn not offered (routes: simulated); "
                   "b: exit CN not offered (exit countries: none)")
    assert refusal(job(), [caps("a", providers=()), caps("b")]) is None


def test_capabilities_survive_json():
    w = caps(boxes=("debian12",), exits=("CN",))
    assert Capabilities.from_json(w.to_json()) == w


def test_this_machine_is_probed_for_real():
    c = probe(WorkerConfig(name="here"))
    assert c.cores >= 1 and c.memory_mb > 0 and c.routes == ("simulated",) and not c.exits
    for p in ("lab", "vagrant"):
        assert (p in c.providers) != (p in c.problems), f"{p}: offered or said why not"


@pytest.mark.parametrize(("text", "says"), [
    ("routes: vpn", "routes: a list"),
    ("providers: [docker]", "providers: unknown docker"),
    ("concurrency: 0", "concurrency: a whole number"),
    ("gpu: 1", "a worker config is a mapping of"),
    ("routes: [\n", "cannot read the worker config"),
])
def test_a_bad_worker_config_is_refused(tmp_path, text, says):
    path = tmp_path / "worker.yaml"
    path.write_text(text)
    with pytest.raises(FleetInputError) as e:
        WorkerConfig.load(path)
    assert says in str(e.value)


def test_a_worker_config_names_routes_and_exits(tmp_path):
    path = tmp_path / "worker.yaml"
    path.write_text("name: host-7\nroutes: [simulated, vpn]\nexits: [CN, US]\n"
                    "providers: [lab]\nconcurrency: 2\n")
    c = WorkerConfig.load(path)
    assert (c.name, c.routes, c.exits, c.providers, c.concurrency) == (
        "host-7", ("simulated", "vpn"), ("CN", "US"), ("lab",), 2)
    assert WorkerConfig.load(None, "x").routes == ("simulated",)
