"""A damaged file of a run, met by the CLI: one line naming the file, no traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.run import files as f
from tests.support import SEED_RUN


def cli(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "testbed", *map(str, argv)],
                          capture_output=True, text=True, timeout=300)


def seed_copy(results: Path, name: str = "seed-run") -> Path:
    run = results / "skype-2013-lab" / name
    shutil.copytree(SEED_RUN, run, ignore=shutil.ignore_patterns("expected"))
    return run


def one_error_naming(out: subprocess.CompletedProcess[str], damaged: Path) -> None:
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"testbed: {damaged}: "), out.stderr


@pytest.mark.parametrize(("name", "content"), [
    (f.MANIFEST, "{not json"),
    (f.MANIFEST, '{"guests": ["regular"]}'),
    (f.EVENTS, '{"variant": "regular", "action": "launch"}\n{"half a line'),
    (f.TLS, '{"event": 7}\n'),
])
def test_analyze(tmp_path: Path, name: str, content: str) -> None:
    run = seed_copy(tmp_path)
    (run / name).write_text(content)
    out = cli("analyze", run)
    assert out.returncode == 2
    one_error_naming(out, run / name)


def test_report_names_the_damaged_file_and_still_writes_the_page(tmp_path: Path) -> None:
    run = seed_copy(tmp_path)
    assert cli("analyze", run).returncode == 0
    (run / f.VERDICTS).write_text('{"verdicts": [{"id": "x", "status": ["pass"]}]}')
    out = cli("report", run)
    assert out.returncode == 0 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"testbed: warning: {run / f.VERDICTS}: damaged: verdicts[0]: 'status' should be a "
        "string, not list: ['pass']"]
    assert "verdicts.json</code>: damaged: verdicts[0]" in (run / f.REPORT).read_text()


def _two_runs(results: Path) -> tuple[Path, Path]:
    a, b = seed_copy(results, "run-a"), seed_copy(results, "run-b")
    for run in (a, b):
        assert cli("analyze", run).returncode == 0
    return a, b


def test_diff_and_history(tmp_path: Path) -> None:
    results = tmp_path / "results"
    a, b = _two_runs(results)
    out = cli("diff", a, b)
    assert out.returncode == 0 and "no change" in out.stdout, out.stdout + out.stderr
    endpoints = json.loads((b / f.ENDPOINTS).read_text())
    endpoints["places"]["203.0.113.15"]["disagree"] = "no"
    (b / f.ENDPOINTS).write_text(json.dumps(endpoints))
    out = cli("diff", a, b)
    assert out.returncode == 2 and out.stdout == ""
    one_error_naming(out, b / f.ENDPOINTS)
    assert "places['203.0.113.15']: 'disagree' should be true or false" in out.stderr

    out = cli("history", "skype-2013-lab", "--results", results)
    assert out.returncode == 0 and "Traceback" not in out.stderr
    assert len(out.stdout.strip().splitlines()) == 2  # the header and run a
    assert out.stderr.strip().splitlines() == [
        f"testbed: warning: {b / f.ENDPOINTS}: damaged: places['203.0.113.15']: 'disagree' "
        "should be true or false, not str: 'no' (run not indexed)"]
