#!/usr/bin/env python3
"""Benchmark: the wall time of whole ``testbed run`` processes on the embedded lab (root).

Rows: the seed study (``scenarios/skype-2013-lab.yaml``), and a generated scenario with 4 and
with 8 guests (``lab_scenario.py``), each the median of ``--repeats`` runs, and the ratio of 8
to 4 guests. Targets: the seed run under 18 s; 8 guests at most 1.4x the time of 4.

``--reference CHECKOUT`` also runs another checkout of testbed (e.g. the commit before a
change), interleaved with this one's runs so that both meet the same machine load. Its lab
processes run its own code where they are started from its folder (the orchestrator, the
agent); the reference client is this checkout's (it is started from the guest's home).
Exit status 0 when every target is met, 1 otherwise.

    .venv/bin/python benchmarks/bench_lab_run.py [--repeats N] [--reference CHECKOUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_scenario import write

ROOT = Path(__file__).resolve().parents[1]
SEED = Path("scenarios") / "skype-2013-lab.yaml"  # each checkout runs its own
TARGET_SEED_S = 18.0
TARGET_RATIO = 1.4


def timed_run(checkout: Path, scenario: Path, results: Path) -> tuple[float, int]:
    """Seconds one ``testbed run`` process took, and its exit status."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "testbed", "run", str(scenario),
                          "--results", str(results)], cwd=checkout, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took = time.monotonic() - t0
    if res.returncode != 0:
        runs = sorted(results.glob("*/*/manifest.json"), key=lambda p: p.stat().st_mtime)
        why = [json.loads(runs[-1].read_text()).get("error", "")] if runs else []
        verdicts = runs[-1].with_name("verdicts.json") if runs else None
        if verdicts and verdicts.exists():
            why += [f"{v['status']}: {v['id']}: {v['reason']}" for v in
                    json.loads(verdicts.read_text())["verdicts"] if v["status"] != "pass"]
        print(f"  ({checkout.name}: {scenario.name} exited {res.returncode}: "
              f"{res.stderr.strip()[-300:]} {'; '.join(w for w in why if w)})", file=sys.stderr)
    return took, res.returncode


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--reference", type=Path, help="another checkout to run beside this one")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("bench_lab_run: the lab needs root", file=sys.stderr)
        return 1
    checkouts = {"this": ROOT} | ({"reference": args.reference.resolve()}
                                  if args.reference else {})
    rows = ("seed-lab run", "4 guests", "8 guests")
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        folder = Path(tmp)
        scenarios = {(name, row): (checkout / SEED if row == rows[0] else
                                   write(int(row[0]), folder / name, checkout))
                     for name, checkout in checkouts.items() for row in rows}
        times: dict[tuple[str, str], list[float]] = {}
        failures = 0
        for r in range(args.repeats):
            for row in rows:
                for name, checkout in checkouts.items():
                    took, code = timed_run(checkout, scenarios[(name, row)],
                                           folder / "results" / name)
                    failures += code != 0 and name == "this"
                    times.setdefault((name, row), []).append(took)
            print(f"  repeat {r + 1}/{args.repeats} done", file=sys.stderr)
    load = os.getloadavg()[0]
    print(f"\nlab run: whole `testbed run` process, median of {args.repeats} "
          f"(load average {load:.1f} on {os.cpu_count()} cores)")
    header = f"  {'':<16}" + "".join(f"{n:>12}" for n in checkouts) + "   target"
    print(header)
    med = {k: statistics.median(v) for k, v in times.items()}
    ok = failures == 0
    for row in rows:
        target = f"< {TARGET_SEED_S:g} s" if row == "seed-lab run" else ""
        cells = "".join(f"{med[(n, row)]:>10.1f} s" for n in checkouts)
        print(f"  {row:<16}{cells}   {target}")
    ratios = {n: med[(n, "8 guests")] / med[(n, "4 guests")] for n in checkouts}
    print(f"  {'8 / 4 guests':<16}" + "".join(f"{r:>11.2f}x" for r in ratios.values())
          + f"   <= {TARGET_RATIO:g}x")
    ok = ok and med[("this", "seed-lab run")] < TARGET_SEED_S and ratios["this"] <= TARGET_RATIO
    if failures:
        print(f"  {failures} run(s) of this checkout did not pass all their verdicts (above)")
    print(f"  targets {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
