"""The ``testbed`` command. User mistakes give one clear line and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from testbed._errors import ScenarioError, TestbedError
from testbed._subcommand import (
    add_allow_outside_flag,
    add_command,
    add_group,
    add_json_flag,
    add_run_argument,
)
from testbed.run.files import DEFAULT_RESULTS, ENDPOINTS, ENDPOINTS_CSV, REPORT

__all__ = ["build_parser", "main"]
# testbed does no linear algebra: numpy's OpenBLAS need not start a thread per core when
# imported (~0.06-0.1 CPU s per command, taken from the analysis beside it; issue 10)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
MARK = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE"}


def _print_verdicts(verdicts: list) -> None:  # list[Verdict]
    from testbed.verdicts.junit import failure_text

    for v in verdicts:
        if v.status == "fail":
            print(f"\n{failure_text(v)}")
    print("\nVerdicts")
    for v in verdicts:
        print(f"  {MARK.get(v.status, v.status):<13} {v.id}: {v.reason}")


def cmd_run(args: argparse.Namespace) -> int:
    from testbed.orchestrator.run import run_scenario
    from testbed.scenario import load_scenario

    scenario = load_scenario(args.scenario, args.allow_outside or ())
    outcome = run_scenario(scenario, args.results, progress=lambda m: print(m, flush=True))
    if outcome.analysis is not None:
        _print_warnings(outcome.analysis.warnings)
        print(f"\nEndpoints ({ENDPOINTS_CSV})")
        print(outcome.analysis.table)
    _print_verdicts(outcome.verdicts)
    print(f"\nresults: {outcome.run.path} (status: {outcome.status})")
    print(f"report:  {outcome.run.path / REPORT}")
    if not outcome.verdicts:
        print("no verdicts: the run produced no capture to judge", file=sys.stderr)
    return 0 if outcome.all_passed else 1


def cmd_validate(args: argparse.Namespace) -> int:
    from testbed.scenario.commands import validate

    return validate(args.files, args.allow_outside or ())


def cmd_schema(args: argparse.Namespace) -> int:
    from testbed.scenario.commands import print_schema

    return print_schema(args.kind)


def cmd_analyze(args: argparse.Namespace) -> int:
    from testbed.orchestrator.rundir import RunDir
    from testbed.orchestrator.scancache import Scans
    from testbed.run.store import withdraw_derived

    for db in args.geoip or []:
        if not db.is_file():
            raise TestbedError(f"{db}: no such GeoIP database")
    # a re-analysis into the run itself first withdraws what the last one wrote: verdicts come
    # only from the evidence there is now (--geoip writes a new folder, the run stays as it is)
    withdrawn = [] if args.geoip else withdraw_derived(args.run)
    try:
        run = RunDir.open(args.run)
        if args.geoip:
            from testbed.orchestrator.analyze import derived_run

            target = derived_run(run, args.geoip)
        else:
            target = run
        with Scans(target) as scans:  # first: the imports below run beside the scans
            from testbed.orchestrator.analyze import analyze_run
            from testbed.orchestrator.guard import (
                RunFailed,
                describe,
                discard_partial_analysis,
                disk_full,
                settle_status,
            )
            from testbed.report import build_report
            from testbed.report.render import warm
            from testbed.verdicts.check import check_run

            warm()
            try:
                analysis = analyze_run(target, args.geoip, scans)
                _print_warnings(analysis.warnings)
                print(analysis.table)
                verdicts = check_run(target.path)
                _print_verdicts(verdicts)
                build_report(target.path)
                settle_status(target)
            except (OSError, TestbedError) as e:
                full = disk_full(e)
                if full is None and not isinstance(e, OSError):
                    raise
                discard_partial_analysis(target.path)
                why = describe(full) if full is not None else str(e)
                raise RunFailed(f"{target.path}: analysis failed: {why}") from e
    except TestbedError as e:
        if withdrawn:
            e.args = (f"{e}; the run is not judged (its earlier results were removed: "
                      f"{', '.join(withdrawn)})",)
        raise
    print(f"report: {target.path / REPORT}")
    if args.geoip:
        print(f"\nre-analysis: {target.path} (the run's own analysis and verdicts are unchanged)")
    return 0 if verdicts and all(v.status == "pass" for v in verdicts) else 1


def _print_warnings(warnings: list[str]) -> None:
    for w in warnings[:20]:
        print(f"warning: {w}", file=sys.stderr)
    if len(warnings) > 20:
        print(f"warning: ... and {len(warnings) - 20} more ({ENDPOINTS})",
              file=sys.stderr)


def cmd_lab_cleanup(args: argparse.Namespace) -> int:
    from testbed.lab import owners
    from testbed.lab.netns import sweep
    from testbed.orchestrator.rundir import mark_abandoned

    if os.geteuid() != 0:
        raise TestbedError("testbed lab cleanup needs root (it removes network namespaces)")
    gone = [run for tag, run in owners.gone_runs().items() if args.tag in (None, tag)]
    done = sweep(everything=args.all, only=args.tag)
    for scenario_dir in sorted({run.parent for run in gone}):
        for run in mark_abandoned(scenario_dir):
            print(f"run {run}: abandoned (its process is gone)")
    kept = [r for r in done if r.startswith("kept ")]
    removed = [r for r in done if not r.startswith("kept ")]
    for r in kept:
        print(r)
    for r in removed:
        print(f"removed {r}")
    print(f"lab cleanup: {len(removed)} leftover(s) removed"
          + (f", {len(kept)} live run(s) left alone" if kept else ""))
    return 0


def cmd_geo_lookup(args: argparse.Namespace) -> int:
    from testbed.geo import lookup

    return lookup.run(args)


def cmd_geo_update(args: argparse.Namespace) -> int:
    from testbed.geo import update

    return update.run(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="testbed",
        description="Run reproducible lab experiments on network clients: drive builds through "
        "their GUIs, capture their traffic at a gateway, place every server on the map, and "
        "check the findings.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = add_command(sub, "run", cmd_run, help="run a scenario end to end",
                    description="Run a scenario: bring up guests and the gateway, drive the "
                    "sessions, capture, analyse, judge. Exit 0 when every verdict passes.")
    r.add_argument("scenario", type=Path, help="scenario file, e.g. scenarios/skype-2013-lab.yaml")
    r.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                   help="where runs are written (default: %(default)s)")
    add_allow_outside_flag(r)
    r.set_defaults(starts_lab=True)

    v = add_command(sub, "validate", cmd_validate, help="check scenario and app-profile files",
                    description="Check files; each problem is printed as FILE:LINE: KEY: "
                    "MESSAGE. Exit 2 when any file is invalid.")
    v.add_argument("files", nargs="+", help="scenario or app profile files (or folders)")
    add_allow_outside_flag(v)

    s = sub.add_parser("schema", help="print the JSON Schema of scenario files (for editors)")
    s.add_argument("--kind", choices=["scenario", "app", "internet", "build"],
                   default="scenario")
    s.set_defaults(func=cmd_schema)

    a = add_command(sub, "analyze", cmd_analyze,
                    help="rebuild a run's analysis and verdicts from its capture",
                    description="Rebuild analysis/ and the verdicts of a run from its "
                    "capture. With --geoip, re-score it with other databases into "
                    "RUN/reanalysis/<id>/, leaving the run's own files untouched.")
    add_run_argument(a)
    a.add_argument("--geoip", type=Path, action="append",
                   help="place endpoints with this MaxMind-format database instead of the "
                   "run's own (repeatable)")

    lab = add_group(sub, "lab", help="the embedded lab")
    c = add_command(lab, "cleanup", cmd_lab_cleanup,
                    help="remove leftovers (namespaces, links, processes) of lab runs that "
                    "were killed",
                    description="Remove the namespaces, links and processes of lab runs "
                    "whose process is gone; runs still going on are left alone.")
    c.add_argument("--all", action="store_true",
                   help="remove every lab's objects, those of live runs too")
    c.add_argument("--tag", default=None, metavar="TAG",
                   help="only the objects of the run with this lab tag (its manifest's "
                   "lab.tag)")

    geo = add_group(sub, "geo", help="GeoIP databases: look addresses up, update the databases")
    gl = add_command(geo, "lookup", cmd_geo_lookup,
                     help="place addresses with every database, side by side",
                     description="Place each address with every database (the bundled "
                     "DB-IP City Lite and GeoLite2 City unless --geoip is given); "
                     "special-purpose addresses are classified, never placed. Marks "
                     "addresses the databases disagree on.")
    gl.add_argument("addresses", nargs="+", metavar="ADDRESS", help="IPv4 or IPv6 address")
    gl.add_argument("--geoip", type=Path, action="append", metavar="FILE",
                    help="use this MaxMind-format database instead of the bundled ones "
                    "(repeatable; the first is primary)")
    add_json_flag(gl)
    gu = add_command(geo, "update", cmd_geo_update,
                     help="download current DB-IP City Lite (and GeoLite2 with a MaxMind "
                     "license key), verified",
                     description="Download DB-IP City Lite for this month (or the "
                     "previous one) and, with a MaxMind license key, GeoLite2-City and "
                     "GeoLite2-ASN; verify checksums, integrity, type and a sample "
                     "lookup; install atomically into --dest.")
    gu.add_argument("--dest", type=Path, default=None, metavar="DIR",
                    help="where to write the databases (default: ~/.local/share/testbed/geoip)")
    gu.add_argument("--license-key", default=None, metavar="KEY",
                    help="MaxMind license key (default: $MAXMIND_LICENSE_KEY; prefer the "
                    "variable, command lines are visible to other users)")
    gu.add_argument("--month", default=None, metavar="YYYY-MM",
                    help="DB-IP release to fetch (default: this month, else the previous one)")
    gu.add_argument("--dbip-base", default="https://download.db-ip.com/free", metavar="URL",
                    help="DB-IP download base URL (default: %(default)s)")
    gu.add_argument("--maxmind-base", default="https://download.maxmind.com", metavar="URL",
                    help="MaxMind download base URL (default: %(default)s)")
    gu.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                    help="network timeout per request (default: %(default)s)")

    # The rest of the active set: each module adds its own subcommands.
    from testbed import doctor, scaffold
    from testbed.fleet import commands as fleet_commands
    from testbed.history import commands as history_commands
    from testbed.report import commands as report_commands
    from testbed.vagrant import commands as vagrant_commands

    scaffold.add_parser(sub)
    doctor.add_parser(sub)
    report_commands.add_parser(sub)
    history_commands.add_parser(sub)
    vagrant_commands.add_parser(sub, DEFAULT_RESULTS)
    fleet_commands.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ScenarioError as e:
        print(e, file=sys.stderr)  # one "FILE:LINE: KEY: MESSAGE" line per problem
        return e.exit_code
    except TestbedError as e:
        print(f"testbed: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # the reader went away (`testbed schema | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:  # a full disk, a folder that cannot be written: one line
        from testbed.orchestrator.guard import describe

        print(f"testbed: {describe(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # only a run says what became of its lab
        print(f"testbed: {getattr(e, 'message', 'interrupted')}", file=sys.stderr)
        return 130


def console() -> None:
    """The `testbed` console script: `main()`, then exit without tearing the interpreter
    down once only the main thread is left. Module teardown and the final collection of a
    numpy-heavy process take ~60 ms, a twentieth of analysing 1 M packets (issue 10's
    speed target); stdio is flushed and the atexit handlers run first, as at a normal exit."""
    import atexit
    import threading

    code = main()
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to say
            pass
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
