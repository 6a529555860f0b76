#!/usr/bin/env python3
"""Benchmark: two VMs brought up and restored one after another, then in parallel (root).

A two-VM copy of ``scenarios/skype-2013-vm.yaml`` (both clients get the testbed/debian12
box; sessions: launch only, no expectations) runs, per mode, a first run (``vagrant up``,
desktop session, staging, clean snapshot) and a restore run (``virsh snapshot-revert``,
per-run set-up, agent), then ``testbed vagrant destroy``. Printed and written as JSON: the
``guests`` phase of each run and each VM's steps (``timings.json``), per mode, and the
saving of parallel over serial. Needs the box added to vagrant and libvirtd running (as the
slow tests have them); TESTBED_LIBVIRT_DRIVER=qemu without KVM.

    .venv/bin/python benchmarks/bench_vm_parallel.py [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testbed.orchestrator.run import run_scenario  # noqa: E402
from testbed.provider import POOLS, Context, Gateway, GuestPool, PoolKind  # noqa: E402
from testbed.scenario import load_scenario  # noqa: E402
from testbed.vagrant.provider import VagrantPool, destroy, machines_dir  # noqa: E402


def two_vm_scenario(folder: Path) -> Path:
    shutil.copytree(ROOT / "scenarios", folder / "scenarios")
    path = folder / "scenarios" / "bench-2vm.yaml"
    doc = yaml.safe_load((ROOT / "scenarios" / "skype-2013-vm.yaml").read_text())
    doc["scenario"] = "bench-2vm"
    doc["clients"]["tom-zh"]["vm"] = dict(doc["clients"]["regular"]["vm"])
    doc["sessions"] = [s for s in doc["sessions"] if s["name"] == "launch"]
    doc["expectations"] = []
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def kind(parallel: bool) -> PoolKind:
    def make(ctx: Context, gateway: Gateway) -> GuestPool:
        return VagrantPool(ctx.run, gateway, ctx.scenario,
                           machines_dir(ctx.results, ctx.scenario), ctx.progress, parallel)

    base = POOLS["vagrant"]
    return PoolKind(make, base.unavailable, base.gateway)


def one_mode(scenario_path: Path, results: Path, parallel: bool) -> dict[str, object]:
    scenario = load_scenario(scenario_path)
    out: dict[str, object] = {}
    try:
        for label in ("first", "restore"):
            t0 = time.monotonic()
            outcome = run_scenario(scenario, results, progress=print, kind=kind(parallel))
            manifest = json.loads((outcome.run.path / "manifest.json").read_text())
            timings = outcome.run.path / "vagrant" / "timings.json"
            out[label] = {"status": outcome.status,
                          "wall": round(time.monotonic() - t0, 1),
                          "guests": manifest["phases"]["guests"]["seconds"],
                          "vms": json.loads(timings.read_text()) if timings.exists() else {}}
    finally:
        destroy(scenario, machines_dir(results, scenario))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="write the results here (JSON)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-vm-") as tmp:
        path = two_vm_scenario(Path(tmp))
        res = {mode: one_mode(path, Path(tmp) / f"results-{mode}", mode == "parallel")
               for mode in ("serial", "parallel")}
    for label in ("first", "restore"):
        serial = res["serial"][label]["guests"]  # type: ignore[index]
        parallel = res["parallel"][label]["guests"]  # type: ignore[index]
        res[f"saving_{label}"] = {"seconds": round(serial - parallel, 1),
                                  "percent": round(100 * (serial - parallel) / serial, 1)}
        print(f"{label}: two VMs one after another {serial:.1f} s, in parallel "
              f"{parallel:.1f} s (saving {serial - parallel:.1f} s)")
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
