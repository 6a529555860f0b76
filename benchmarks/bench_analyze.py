#!/usr/bin/env python3
"""Benchmark: the whole analyze stage (`testbed analyze RUN`, one process) beside tcpdump.

The recorded seed lab run (tests/data/seed-run: the guests' addresses, real DNS, TLS,
HTTP and canary payloads) is copied to run directories whose capture is replicated to
1 M and 2 M packets (`replicate.py`). For each size, in the same run and alternating:

- `testbed analyze RUN` as a whole process (imports, scan, placement, verdicts, report),
  with the run's saved scan removed first so the capture is really read;
- `testbed analyze RUN --geoip DB` with another database (the lab's map, written by the
  first analysis): a re-analysis, which reuses both scans;
- `tcpdump -r FILE -w /dev/null` (libpcap reading, no decoding) and
  `tcpdump -nn -r FILE > /dev/null` (reading and printing every packet).

Medians of `--repeat` runs; peak RSS of the analyze process (tree); CPU seconds (user +
system of the process tree) beside wall time, as the machine may be shared. `--reference DIR` adds
`testbed analyze` from another source tree (e.g. `git archive` of an older commit) as
a paired row. Targets: whole stage
>= 1 M packets/s and >= 0.25x `tcpdump -r -w /dev/null`, peak RSS < 200 MB at 2 M.
Exit status 0 when every target is met, 1 otherwise.

    .venv/bin/python benchmarks/bench_analyze.py [--sizes 1000000,2000000] [--repeat 5]
                                                 [--reference DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replicate import replicate

from testbed._digest import file_sha256
from testbed.lab.internet_map import load_internet
from testbed.run import files

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "tests" / "data" / "seed-run"
TESTBED = Path(sys.executable).with_name("testbed")
TARGET_PPS = 1_000_000
TARGET_RATIO = 0.25
TARGET_RSS_MB = 200
VERDICTS_DONE = (0, 1)  # `testbed analyze`: 1 is some verdict not passing, which is fine here
# `testbed` from the source tree in argv[1], not the installed (editable) one.
_FROM = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in "
         "str(getattr(f, '__module__', f))]; sys.path.insert(0, sys.argv.pop(1)); "
         "from testbed.cli import main; sys.exit(main(sys.argv[1:]))")


def make_run(base: Path, packets: int) -> Path:
    run = base / f"run-{packets}"
    shutil.copytree(SEED, run, ignore=shutil.ignore_patterns("expected", "gateway.pcap"))
    replicate(SEED / "capture" / "gateway.pcap", run / "capture" / "gateway.pcap", packets)
    # as `testbed run` records a run today (the seed run predates it): the lab's map checked,
    # and its digest in the manifest (an analysis does not check that file again)
    copy = run / files.INTERNET
    internet = load_internet(copy)
    manifest = json.loads((run / files.MANIFEST).read_text())
    manifest["internet"] = {"name": internet.name, "path": str(copy),
                            "sha256": file_sha256(copy)}
    (run / files.MANIFEST).write_text(json.dumps(manifest, indent=2))
    return run


Timing = tuple[float, int, float]  # wall seconds, peak RSS KiB, CPU seconds (user + system)


def timed(cmd: list[str], ok: tuple[int, ...] = (0,)) -> Timing:
    """One run of `cmd`, its output discarded: (seconds, peak RSS KiB, CPU seconds of its
    process tree), from `wait4` on the command itself (no shell or wrapper process whose
    own start would be counted); an exit status outside `ok` stops the benchmark."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    proc.returncode = code = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
    if code not in ok:
        raise SystemExit(f"{' '.join(cmd)} failed with exit status {code}")
    return seconds, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def bench(run: Path, repeat: int, reference: Path | None) -> dict[str, Timing]:
    """Medians (peak RSS: the largest) of `repeat` rounds, each round one of every command."""
    pcap = run / files.PCAP
    saved = [run / files.CAPTURE_SCAN, run / files.FLOWS_SCAN]  # both scans: a cold analysis
    rows: dict[str, list[Timing]] = {
        k: [] for k in ("analyze", "reuse", "w", "nn", *(["ref"] if reference else []))}
    for _ in range(repeat):
        if reference is not None:
            for s in saved:
                s.unlink(missing_ok=True)
            rows["ref"].append(timed([sys.executable, "-c", _FROM, str(reference), "analyze",
                                      str(run)], VERDICTS_DONE))
        for s in saved:
            s.unlink(missing_ok=True)
        rows["analyze"].append(timed([str(TESTBED), "analyze", str(run)], VERDICTS_DONE))
        lab_db = sorted((run / files.GEO_DIR).glob("lab-*.mmdb"))  # another database
        rows["reuse"].append(timed([str(TESTBED), "analyze", str(run),
                                    *(a for db in lab_db for a in ("--geoip", str(db)))],
                                   VERDICTS_DONE))
        rows["w"].append(timed(["tcpdump", "-r", str(pcap), "-w", "/dev/null"]))
        rows["nn"].append(timed(["tcpdump", "-nn", "-r", str(pcap)]))
    return {k: (statistics.median(t[0] for t in v), max(t[1] for t in v),
                statistics.median(t[2] for t in v)) for k, v in rows.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000000,2000000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--reference", type=Path, default=None, metavar="DIR",
                    help="also time `testbed analyze` from this source tree")
    args = ap.parse_args()
    if not shutil.which("tcpdump"):
        raise SystemExit("tcpdump is needed (apt-get install tcpdump)")
    from testbed.analysis import native

    # testbed's modules compiled once, as any second run of the command would find them
    # (an environment with PYTHONDONTWRITEBYTECODE would otherwise recompile ~80 modules,
    # ~0.08 s, in every timed process)
    for tree in (ROOT, *([args.reference] if args.reference else [])):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "testbed")],
                       check=True)

    print(f"native loops (testbed/analysis/_native.c): "
          f"{'built' if native.NATIVE else 'NOT BUILT, pure Python'}; load average at start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-analyze-") as tmp:
        for packets in (int(s) for s in args.sizes.split(",")):
            run = make_run(Path(tmp), packets)
            r = bench(run, args.repeat, args.reference)
            (a, rss, cpu), (reuse, _, reuse_cpu) = r["analyze"], r["reuse"]
            w, w_cpu = r["w"][0], r["w"][2]
            nn = r["nn"][0]
            pps = packets / a
            print(f"\nwhole analyze stage, {packets:,} packets (seed lab run replicated), "
                  f"median of {args.repeat} paired rounds (wall; CPU = user + system of the "
                  f"process tree):")
            print(f"  testbed analyze (cold)     {a:7.2f} s  {pps / 1e6:5.2f} M packets/s  "
                  f"CPU {cpu:5.2f} s  peak RSS {rss / 1024:5.0f} MB")
            print(f"  ... --geoip another DB     {reuse:7.2f} s  CPU {reuse_cpu:5.2f} s  "
                  "(re-analysis: both scans reused)")
            if "ref" in r:
                ref, ref_rss, ref_cpu = r["ref"]
                label = f"reference ({args.reference.name})"
                print(f"  {label:26s} {ref:7.2f} s  {packets / ref / 1e6:5.2f} M packets/s  "
                      f"CPU {ref_cpu:5.2f} s  peak RSS {ref_rss / 1024:5.0f} MB")
            print(f"  tcpdump -r F -w /dev/null  {w:7.2f} s  ratio {w / a:5.2f}x  "
                  f"(CPU {w_cpu:.2f} s, ratio {w_cpu / cpu:.2f}x)")
            print(f"  tcpdump -nn -r F >/dev/null {nn:6.2f} s  ratio {nn / a:5.2f}x")
            checks = [(f">= {TARGET_PPS / 1e6:g} M packets/s", pps >= TARGET_PPS,
                       f"{pps / 1e6:.2f} M/s"),
                      (f">= {TARGET_RATIO}x tcpdump -r -w /dev/null", w / a >= TARGET_RATIO,
                       f"{w / a:.2f}x")]
            if packets >= 2_000_000:
                checks.append((f"peak RSS < {TARGET_RSS_MB} MB", rss / 1024 < TARGET_RSS_MB,
                               f"{rss / 1024:.0f} MB"))
            for what, met, value in checks:
                print(f"  {'MET' if met else 'NOT MET':7s}  {what}: {value}")
            good = all(met for _, met, _ in checks)
            ok = ok and good
    print(f"\nload average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          "(other work on the machine slows every row; the ratios are paired per round)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
