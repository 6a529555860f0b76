#!/usr/bin/env python3
"""Benchmark: the wall time of whole ``testbed run`` processes on the embedded lab (root).

Rows: the seed study (``scenarios/skype-2013-lab.yaml``), and a generated scenario with 4 and
with 8 guests (``lab_scenario.py``), each the median of ``--repeats`` runs, and the ratio of 8
to 4 guests. Targets: the seed run under 18 s; 8 guests at most 1.4x the time of 4. Below the
rows, where the time went, medians again: each phase of the run (its manifest; ``start-up``
is the process before its first record, ``exit`` after its last), each part of the lab's
set-up and teardown (``lab/timings.jsonl``, the slowest guest's) and each session.

``--reference CHECKOUT`` also runs another checkout of testbed (e.g. /work/main, or the commit
before a change), interleaved with this one's runs so that both meet the same machine load;
with its own ``.venv`` where it has one (so that its lab processes run its code too).
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_scenario import write

ROOT = Path(__file__).resolve().parents[1]
SEED = Path("scenarios") / "skype-2013-lab.yaml"  # each checkout runs its own
TARGET_SEED_S = 18.0
TARGET_RATIO = 1.4
ROWS = ("seed-lab run", "4 guests", "8 guests")
TIMINGS = Path("lab") / "timings.jsonl"  # testbed.run.files.LAB_TIMINGS (older runs: none)


def python_of(checkout: Path) -> str:
    own = checkout / ".venv" / "bin" / "python"
    return str(own) if checkout != ROOT and own.exists() else sys.executable


def timed_run(checkout: Path, scenario: Path, results: Path) -> tuple[float, int, dict[str, Any]]:
    """Seconds one ``testbed run`` process took, its exit status, and where its time went."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    wall, t0 = time.time(), time.monotonic()
    res = subprocess.run([python_of(checkout), "-m", "testbed", "run", str(scenario),
                          "--results", str(results)], cwd=checkout, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took = time.monotonic() - t0
    runs = sorted(results.glob("*/*/manifest.json"), key=lambda p: p.stat().st_mtime)
    parts = breakdown(runs[-1].parent, wall, wall + took) if runs else {}
    if res.returncode != 0:
        why = [json.loads(runs[-1].read_text()).get("error", "")] if runs else []
        verdicts = runs[-1].with_name("verdicts.json") if runs else None
        if verdicts and verdicts.exists():
            why += [f"{v['status']}: {v['id']}: {v['reason']}" for v in
                    json.loads(verdicts.read_text())["verdicts"] if v["status"] != "pass"]
        print(f"  ({checkout.name}: {scenario.name} exited {res.returncode}: "
              f"{res.stderr.strip()[-300:]} {'; '.join(w for w in why if w)})", file=sys.stderr)
    return took, res.returncode, parts


def breakdown(run: Path, began: float, ended: float) -> dict[str, Any]:
    """Seconds per phase, per lab part (the slowest guest's) and per session of one run."""
    manifest = json.loads((run / "manifest.json").read_text())
    phases = manifest.get("phases", {})
    out: dict[str, Any] = {"phase": {}, "lab": {}, "session": {}}
    if phases:
        first = min(p["start"] for p in phases.values())
        last = max(p.get("end", p["start"]) for p in phases.values())
        out["phase"]["start-up"] = first - began
        out["phase"].update({name: p.get("seconds", 0.0) for name, p in phases.items()})
        out["phase"]["exit"] = ended - last
    timings = run / TIMINGS
    for line in timings.read_text().splitlines() if timings.exists() else []:
        d = json.loads(line)
        who = "per guest" if d["who"] not in ("pool", "gateway") else d["who"]
        key = f"{who}: {d['step']}"
        out["lab"][key] = max(out["lab"].get(key, 0.0), d["seconds"])
    spans: dict[str, list[float]] = {}
    for line in (run / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e.get("session") and e.get("start") and e.get("end"):
            s = spans.setdefault(e["session"], [e["start"], e["end"]])
            s[0], s[1] = min(s[0], e["start"]), max(s[1], e["end"])
    out["session"] = {name: end - start for name, (start, end) in spans.items()}
    return out


def medians(parts: list[dict[str, Any]], kind: str) -> dict[str, float]:
    keys: dict[str, None] = {}
    for p in parts:
        keys.update(dict.fromkeys(p.get(kind, {})))
    return {k: statistics.median(p[kind][k] for p in parts if k in p.get(kind, {}))
            for k in keys}


def print_breakdown(row: str, names: list[str],
                    parts: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    for kind in ("phase", "lab", "session"):
        table = {n: medians(parts[(n, row)], kind) for n in names}
        keys = list(dict.fromkeys(k for n in names for k in table[n]))
        if not keys:
            continue
        print(f"  {row}, per {kind}:")
        for k in keys:
            cells = "".join(f"{table[n][k]:>10.2f} s" if k in table[n] else f"{'-':>12}"
                            for n in names)
            print(f"    {k:<42}{cells}")


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
    names = list(checkouts)
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        folder = Path(tmp)
        scenarios = {(name, row): (checkout / SEED if row == ROWS[0] else
                                   write(int(row[0]), folder / name, checkout))
                     for name, checkout in checkouts.items() for row in ROWS}
        times: dict[tuple[str, str], list[float]] = {}
        parts: dict[tuple[str, str], list[dict[str, Any]]] = {}
        failures = 0
        for r in range(args.repeats):
            for i, row in enumerate(ROWS):
                for name, checkout in checkouts.items():
                    results = folder / "results" / name / f"{i}-{r}"
                    took, code, part = timed_run(checkout, scenarios[(name, row)], results)
                    failures += code != 0 and name == "this"
                    times.setdefault((name, row), []).append(took)
                    parts.setdefault((name, row), []).append(part)
            loads.append(os.getloadavg()[0])
            print(f"  repeat {r + 1}/{args.repeats} done", file=sys.stderr)
    print(f"\nlab run: whole `testbed run` process, median of {args.repeats} (load average "
          f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores, others' work included)")
    print(f"  {'':<44}" + "".join(f"{n:>12}" for n in names))
    med = {k: statistics.median(v) for k, v in times.items()}
    for row in ROWS:
        print(f"  {row:<44}" + "".join(f"{med[(n, row)]:>10.1f} s" for n in names))
    ratios = {n: med[(n, "8 guests")] / med[(n, "4 guests")] for n in names}
    print(f"  {'8 / 4 guests':<44}" + "".join(f"{r:>11.2f}x" for r in ratios.values()))
    for row in ROWS:
        print_breakdown(row, names, parts)
    seed, ratio = med[("this", ROWS[0])], ratios["this"]
    checks = [(f"seed-lab run < {TARGET_SEED_S:g} s", seed < TARGET_SEED_S, f"{seed:.1f} s"),
              (f"8 guests <= {TARGET_RATIO:g}x 4 guests", ratio <= TARGET_RATIO,
               f"{ratio:.2f}x"),
              ("every run of this checkout passed its verdicts", failures == 0,
               f"{failures} did not")]
    print("  targets:")
    for what, met, value in checks:
        print(f"  {'met' if met else 'NOT met':8s} {what}: {value}")
    return 0 if all(met for _, met, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
