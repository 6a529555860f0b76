"""A worker whose pre-flight starts failing (a vagrant box removed, a provider broken) stops
taking the jobs it can no longer run: its advert changes, so new submissions are refused or
go elsewhere, and a delivery it receives anyway is put back on its queue untouched."""

from __future__ import annotations

import pytest

from testbed.cli import main as cli
from testbed.fleet.capabilities import Capabilities, WorkerConfig
from testbed.fleet.engine import connect, key
from testbed.fleet.ledger import Ledger
from testbed.fleet.spec import JobSpec
from testbed.fleet.status import live_workers
from testbed.fleet.worker import Worker
from tests.fleet.conftest import ROOT


class Host:
    """What the pre-flight finds on this (pretend) host; a test removes things from it."""

    def __init__(self) -> None:
        self.providers, self.boxes = ["lab", "vagrant"], ["debian12"]

    def probe(self, config: WorkerConfig) -> Capabilities:
        return Capabilities(worker=config.name, host="h", providers=tuple(self.providers),
                            boxes=tuple(self.boxes), routes=config.routes, exits=config.exits,
                            cores=2, memory_mb=1024, concurrency=1,
                            problems={p: "pre-flight failed" for p in ("lab", "vagrant")
                                      if p not in self.providers})


@pytest.fixture
def host_worker(tmp_path, broker):
    host = Host()
    w = Worker(broker.url, tmp_path / "w", ROOT / "scenarios", WorkerConfig(name="w1"),
               heartbeat=0.5, caps_probe=host.probe)
    w.advertise()
    return host, w


def vagrant_job(ledger: Ledger) -> JobSpec:
    spec = JobSpec(job_id="v1", scenario="vagrant.yaml", sha256="x", provider="vagrant",
                   boxes=("debian12",))
    ledger.create(spec, 3)
    ledger.sent(spec.job_id, 1)
    return spec


@pytest.mark.parametrize("removed", ["box", "provider"])
def test_a_worker_that_loses_what_a_job_needs_puts_it_back(host_worker, broker, removed):
    host, w = host_worker
    ledger = Ledger(connect(broker.url))
    spec = vagrant_job(ledger)
    assert "fleet.vagrant.any.any" in w.caps.queues()
    if removed == "box":
        host.boxes.clear()
    else:
        host.providers.remove("vagrant")
    w._reprobe()
    w.advertise()
    assert ("fleet.vagrant.any.any" in w.caps.queues()) == (removed == "box")
    outcome = w.handle(spec.job_id, 1)
    assert outcome.startswith("put back: ")
    assert ("box(es) debian12 not present" if removed == "box" else
            "provider vagrant unavailable (pre-flight failed)") in outcome
    job = ledger.get(spec.job_id)
    assert (job.state, job.attempt, job.get("worker")) == ("queued", 1, "")
    assert connect(broker.url).llen(spec.queue) == 1, "the delivery is back on its queue"
    [advert] = live_workers(connect(broker.url))
    assert advert.cannot_run(spec) is not None


def test_submit_refuses_what_the_changed_worker_no_longer_offers(host_worker, broker, capsys):
    host, w = host_worker
    assert cli(["submit", str(ROOT / "scenarios" / "skype-2013-lab.yaml"), "--broker",
                broker.url, "--scenarios-root", str(ROOT / "scenarios")]) == 0
    host.providers.remove("lab")
    w._reprobe()
    w.advertise()
    assert cli(["submit", str(ROOT / "scenarios" / "skype-2013-lab.yaml"), "--broker",
                broker.url, "--scenarios-root", str(ROOT / "scenarios")]) == 2
    assert "w1: provider lab unavailable (pre-flight failed)" in capsys.readouterr().err


def test_a_delivery_of_a_job_already_taken_is_dropped(host_worker, broker):
    _, w = host_worker
    ledger = Ledger(connect(broker.url))
    spec = vagrant_job(ledger)
    assert ledger.claim(spec.job_id, 1, "other")
    assert w.handle(spec.job_id, 1) == "dropped (an old or repeated delivery)"
    assert ledger.get(spec.job_id).get("worker") == "other"
    assert connect(broker.url).get(key("lease", spec.job_id)) == b"other"
