"""The run directory's layout and its JSON plumbing: every file name lives here.

    results/<scenario>/<run-id>/
        manifest.json     scenario + hash, tool versions, phases, capture stats, GeoIP provenance
        scenario.yaml     the scenario as it was run;  lab/internet.yaml  the simulated internet
        lab/              the simulated internet's logs; lab-ca.pem, daemons/<row name>/ (real
                          server software: config/, data/, logs/, tls/, daemon.log)
        events.jsonl      every action: guest, start, end, outcome
        capture/          gateway.pcap, flows.mitm, tls.jsonl, tcpdump.log, mitmdump.log
        screenshots/<variant>/<phase>.png
        analysis/         endpoints.json, endpoints.csv, endpoints.txt, evidence.json, geo/,
                          canary.json, capture-scan.json, flows-scan.json (the scans a
                          re-analysis reuses)
        verdicts.json     junit.xml     report.html
        reanalysis/<id>/  a re-analysis with other GeoIP databases (a run of its own)
        guests/<variant>/ the guest's own folders: home/ (the app's profile as the app left
                          it), tmp/, etc/ssl/, trust.json (which trust stores hold the CA)

Names are relative to the run directory. Reading a file that is not what its name says raises
:class:`RunFileError` naming the file; the record parsers signal a bad shape with
:class:`~testbed.run.shapes.Shape`, which :func:`load_json` / :func:`load_lines` turn into
that error.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from testbed._errors import RunFileError
from testbed.run.shapes import Shape, obj

#: where runs are written unless told otherwise: ``<results>/<scenario>/<run-id>/``
DEFAULT_RESULTS = Path(os.environ.get("TESTBED_RESULTS", "results"))

MANIFEST = "manifest.json"
SCENARIO = "scenario.yaml"
EVENTS = "events.jsonl"
CAPTURE_DIR = "capture"
PCAP = "capture/gateway.pcap"
FLOWS = "capture/flows.mitm"
TLS = "capture/tls.jsonl"
TLS_RULES = "capture/tls-rules.json"  # what the gateway passes through unopened (mitm_addon)
TCPDUMP_LOG = "capture/tcpdump.log"
MITMDUMP_LOG = "capture/mitmdump.log"
SCREENSHOTS_DIR = "screenshots"
ANALYSIS_DIR = "analysis"
ENDPOINTS = "analysis/endpoints.json"
ENDPOINTS_CSV = "analysis/endpoints.csv"
ENDPOINTS_TXT = "analysis/endpoints.txt"
EVIDENCE = "analysis/evidence.json"
CANARY = "analysis/canary.json"  # every hit of the run's canary, by variant and endpoint
CAPTURE_SCAN = "analysis/capture-scan.json"  # the capture's one scan, reused by re-analyses
FLOWS_SCAN = "analysis/flows-scan.json"
GEO_DIR = "analysis/geo"
LAB_DIR = "lab"
GUESTS_DIR = "guests"  # guests/<variant>/: a guest's folders, kept for inspection
GUEST_HOME = "home"    # guests/<variant>/home: the app's profile as the app left it
GUEST_TRUST = "trust.json"  # guests/<variant>/trust.json: which trust stores hold the CA
INTERNET = "lab/internet.yaml"
LAB_TIMINGS = "lab/timings.jsonl"  # how long each part of the lab's set-up and teardown took
LAB_TRUST = "lab/trust"  # lab/trust/<n>/: the guests' trust stores, made once, copied to each
LAB_CA = "lab/lab-ca.pem"  # the run's lab CA: it issued the daemons' certificates
DAEMONS_DIR = "lab/daemons"  # lab/daemons/<row name>/: config/, data/, logs/, tls/, daemon.log
VERDICTS = "verdicts.json"
JUNIT = "junit.xml"
REPORT = "report.html"
FLEET = "fleet.json"  # a run made by a fleet worker: job id, attempt, worker, attempts lost
REANALYSIS_DIR = "reanalysis"
#: room a live run keeps for its last records: freed when the disk is full (and at the end)
RESERVE = ".reserve"

#: what analysing and judging a run write, all made from the files above: a re-analysis
#: withdraws them first, so one that cannot finish leaves no earlier verdict standing as current
JUDGED = (VERDICTS, JUNIT, REPORT)  # of them, what judging writes
DERIVED = (ENDPOINTS, ENDPOINTS_CSV, ENDPOINTS_TXT, EVIDENCE, CANARY, *JUDGED)
#: what only a run holds: a folder with one of them but no manifest is a run whose manifest is
#: gone (its derived files are withdrawn all the same; a folder with neither is left alone)
RUN_MARKS = (EVENTS, PCAP)

#: the folders a new run starts with
RUN_SUBDIRS = (CAPTURE_DIR, SCREENSHOTS_DIR, ANALYSIS_DIR, LAB_DIR)

T = TypeVar("T")

#: the longest file name a guest- or scenario-provided name becomes
MAX_NAME = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def plain_name(name: object, default: str = "unnamed") -> str:
    """``name`` (which may come from a guest) as one plain file name: no separator, no
    ``..``, no leading dot, no control character, at most ``MAX_NAME`` characters; what is
    left of an unusable name is ``default``. Every file the host writes under a name it did
    not choose goes through here, so a name can never leave its folder."""
    text = _UNSAFE.sub("_", str(name)).replace("..", "_").lstrip(".-")[:MAX_NAME]
    return text if text.strip("_") else default


def inside(root: Path, *names: object, suffix: str = "") -> Path:
    """``root/<plain name>/.../<plain name><suffix>``, its folder checked to stay under
    ``root`` (a link planted on the way is refused; the caller replaces a planted file)."""
    out = root.joinpath(*[plain_name(n) for n in names[:-1]],
                        plain_name(names[-1]) + suffix) if names else root
    if not out.parent.resolve().is_relative_to(root.resolve()):
        raise RunFileError(out, f"leads out of {root} (a link on the way)")
    return out


def guest_dir(run: Path, variant: str) -> Path:
    """``guests/<variant>`` of ``run``: the folders of that variant's guest."""
    return inside(run / GUESTS_DIR, variant)


def is_run(path: Path) -> bool:
    """Whether ``path`` looks like a run directory (it holds a manifest)."""
    return (path / MANIFEST).is_file()


def was_run(path: Path) -> bool:
    """Whether ``path`` is a run, or was one (its manifest is gone, what only a run holds is
    there)."""
    return is_run(path) or any((path / name).is_file() for name in RUN_MARKS)


# -- reading and writing whole files ---------------------------------------------------------
def load_json(path: Path, parse: Callable[[Any], T]) -> T:
    """``parse(json of path)``; a missing, unreadable or misshapen file is a RunFileError."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise RunFileError(path, "missing") from e
    except OSError as e:
        raise RunFileError(path, f"unreadable: {e.strerror or e}") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFileError(path, f"unreadable: not JSON: {e}") from e
    try:
        return parse(raw)
    except Shape as e:
        raise RunFileError(path, f"damaged: {e}") from e


def load_lines(path: Path, parse: Callable[[Mapping[str, Any]], T],
               skip_damaged: bool = False) -> tuple[list[T], int]:
    """The records of a JSON-lines file and how many damaged lines were skipped. Without
    ``skip_damaged`` the first damaged line is a RunFileError naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as e:
        raise RunFileError(path, "missing") from e
    except OSError as e:
        raise RunFileError(path, f"unreadable: {e.strerror or e}") from e
    out: list[T] = []
    skipped = 0
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(parse(obj(json.loads(line), "the line")))
        except (json.JSONDecodeError, Shape) as e:
            if not skip_damaged:
                raise RunFileError(path, f"line {n} damaged: {e}") from e
            skipped += 1
    return out, skipped


def dump_json(path: Path, data: Any, indent: int = 1) -> None:
    """Write ``data`` as JSON (UTF-8, not ASCII-escaped), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + "\n",
                       encoding="utf-8")
        tmp.replace(path)
    except BaseException as e:  # a full disk, an interrupt: no half-written .tmp stays behind
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:  # (a failed write names no file)
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def append_line(path: Path, data: Mapping[str, Any]) -> None:
    """Append one JSON line, whole or not at all (a full disk leaves no half line)."""
    line = (json.dumps(data, ensure_ascii=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        except OSError as e:
            os.ftruncate(fd, size)
            raise OSError(e.errno, e.strerror, str(path)) from e
    finally:
        os.close(fd)
