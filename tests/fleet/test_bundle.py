"""Bundles: checksummed, unpacked atomically, never half-written into the results folder or
the index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from testbed.fleet.bundle import FLEET_DIR, Store, pack, sha256, unpack
from testbed.fleet.engine import FleetError, connect, key
from testbed.fleet.ledger import Ledger
from testbed.fleet.spec import JobSpec
from testbed.run.files import FLEET

DATA = Path(__file__).resolve().parents[1] / "data" / "seed-run"


@pytest.fixture
def run(tmp_path) -> Path:
    src = DATA
    run_id = json.loads((DATA / "manifest.json").read_text())["run_id"]
    dst = tmp_path / "worker" / "skype-2013-lab" / run_id  # as a run is named
    shutil.copytree(src, dst)
    return dst


def test_a_bundle_round_trips_with_its_fleet_note(tmp_path, run):
    data = pack(run, {"job": "j1", "attempt": 2, "retried": True})
    out = unpack(data, sha256(data), tmp_path / "in")
    assert out.name == run.name and out.parent.name == "skype-2013-lab"
    assert json.loads((out / FLEET).read_text())["retried"] is True
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == \
        sorted(p.relative_to(run) for p in run.rglob("*"))


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "wrong sum", "not a tarball"])
def test_a_damaged_bundle_is_refused(tmp_path, run, damage):
    data = pack(run, {"job": "j1"})
    digest = sha256(data)
    if damage == "flip a byte":
        data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "wrong sum":
        digest = "0" * 64
    else:
        data = b"hello"
        digest = sha256(data)
    with pytest.raises(FleetError, match=r"checksum mismatch|cannot be unpacked"):
        unpack(data, digest, tmp_path / "in")


def _done_job(ledger: Ledger, run: Path, job_id: str, corrupt: bool = False) -> None:
    spec = JobSpec(job_id=job_id, scenario="skype-2013-lab.yaml", sha256="x", provider="lab")
    ledger.create(spec, 2)
    data = pack(run, {"job": job_id, "attempt": 1})
    bkey = key("bundle", job_id, "1")
    ledger.r.set(bkey, data[:-10] if corrupt else data)
    ledger.note(job_id, state="done", run_id=run.name, bundle_key=bkey,
                bundle_sha256=sha256(data), worker="w1")


def test_a_bundle_that_fails_its_check_leaves_nothing_behind(tmp_path, run, broker):
    ledger = Ledger(connect(broker.url))
    _done_job(ledger, run, "bad", corrupt=True)
    store = Store(tmp_path / "coordinator")
    lines = store.ingest(ledger)
    assert any("not ingested: bundle checksum mismatch" in line for line in lines)
    assert not (tmp_path / "coordinator" / "skype-2013-lab").exists()
    assert not list((tmp_path / "coordinator" / FLEET_DIR / "incoming").iterdir())
    assert store.history.scenarios() == [] and store.fleet_rows() == []
    assert ledger.get("bad").state == "done", "kept for a look, not marked indexed"


def test_an_ingest_interrupted_after_the_rename_indexes_the_run_once(tmp_path, run, broker):
    ledger = Ledger(connect(broker.url))
    _done_job(ledger, run, "j1")
    results = tmp_path / "coordinator"
    shutil.copytree(run, results / "skype-2013-lab" / run.name)  # a crash left it placed
    store = Store(results)
    store.ingest(ledger)
    store.ingest(ledger)
    assert [r.run_id for r in store.history.runs("skype-2013-lab")] == [run.name]
    assert [r["job_id"] for r in store.fleet_rows()] == ["j1"]
    assert ledger.get("j1").state == "indexed"
    assert ledger.r.get(key("bundle", "j1", "1")) is None


def test_a_second_run_of_an_indexed_job_is_kept_aside(tmp_path, run, broker):
    ledger = Ledger(connect(broker.url))
    _done_job(ledger, run, "j1")
    store = Store(tmp_path / "coordinator")
    store.ingest(ledger)
    other = run.with_name(run.name[:-4] + "beef")  # a second attempt that also finished
    shutil.copytree(run, other)
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps(manifest | {"run_id": other.name}))
    data = pack(other, {"job": "j1", "attempt": 2})
    ledger.r.set(key("bundle", "j1", "2"), data)
    ledger.note("j1", state="done", run_id=other.name, bundle_key=key("bundle", "j1", "2"),
                bundle_sha256=sha256(data))
    [line] = store.ingest(ledger)
    assert "delivered twice" in line
    assert len(store.history.runs("skype-2013-lab")) == 1
    assert list((tmp_path / "coordinator" / FLEET_DIR / "duplicates" / "j1").glob("*/*"))
