"""The ``testbed`` command as a user meets it: clear one-line errors, exit codes, --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "testbed", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_help_lists_the_commands():
    out = run_cli("--help")
    assert out.returncode == 0
    for cmd in ("run", "validate", "schema", "analyze", "lab"):
        assert cmd in out.stdout


def test_validate_the_shipped_scenario():
    out = run_cli("validate", "scenarios/skype-2013-lab.yaml", "scenarios/apps/refclient.yaml")
    assert out.returncode == 0, out.stderr
    assert "ok: 2 file(s) valid" in out.stdout


def test_malformed_scenario_is_one_line_with_file_and_line(tmp_path):
    scenarios = tmp_path / "scenarios"
    (scenarios / "apps").mkdir(parents=True)
    (scenarios / "apps" / "refclient.yaml").write_text(
        (ROOT / "scenarios" / "apps" / "refclient.yaml").read_text())
    bad = scenarios / "x.yaml"
    bad.write_text("scenario: x\nversion: 1\nprovider: lab\nlab: {internet: i.yaml}\n"
                   "clients:\n  tom-en:\n    app: refclinet\n    account: {user: bob}\n"
                   "sessions:\n  - name: s\n    steps:\n      - {variant: tom-en, action: login}\n")
    (scenarios / "i.yaml").write_text(
        "internet: i\nservers:\n  - {address: 192.0.2.1, name: a.example, country: GB, "
        "stands_for: 192.0.2.1, builds: 1, contacted_by: [tom-en]}\n")
    for command in ("validate", "run"):
        out = run_cli(command, "scenarios/x.yaml", cwd=tmp_path)
        assert out.returncode == 2, out
        assert out.stderr.strip() == \
            "scenarios/x.yaml:7: clients.tom-en.app: unknown app profile 'refclinet'"
        assert "Traceback" not in out.stderr


def test_yaml_syntax_error_names_the_line(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("scenario: x\nclients: [\n")
    out = run_cli("validate", str(bad))
    assert out.returncode == 2
    assert f"{bad}:" in out.stderr and "Traceback" not in out.stderr


def test_missing_file():
    out = run_cli("run", "no-such.yaml")
    assert out.returncode == 2 and out.stderr.strip() == "no-such.yaml: file not found"


def test_schema_is_json_schema():
    out = run_cli("schema")
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "clients" in schema["properties"]


def test_analyze_refuses_a_folder_that_is_not_a_run(tmp_path):
    out = run_cli("analyze", str(tmp_path))
    assert out.returncode == 1
    assert "not a run directory" in out.stderr and "Traceback" not in out.stderr


def test_console_exit_keeps_status_output_and_atexit_handlers(tmp_path):
    """The console script skips the interpreter's teardown, not what a normal exit does:
    the status, everything printed (even unflushed, to a pipe) and the atexit handlers."""
    code = ("import atexit, sys; from testbed import cli; "
            "atexit.register(lambda: print('atexit ran', file=sys.stderr)); "
            "print('x' * 100000, end=''); sys.argv[1:] = ['analyze', sys.argv[1]]; "
            "cli.console()")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1, f"a folder that is not a run exits 1, not {out.returncode}"
    assert out.stdout == "x" * 100000, "output printed before the exit should all arrive"
    assert "atexit ran" in out.stderr and "testbed:" in out.stderr, out.stderr


@pytest.mark.parametrize("argv", [["schema"], ["schema", "--kind", "internet"],
                                  ["schema", "--kind", "build"], ["--help"], ["run", "--help"]])
def test_a_reader_that_went_away_gets_no_traceback(argv):
    """`testbed schema | head -1`: the pipe is closed under the writer; it stops quietly."""
    read, write = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "testbed", *argv], stdout=write,
                            stderr=subprocess.PIPE)
    os.close(write)
    os.close(read)  # gone before the first byte is written
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err.decode() and "Exception ignored" not in err.decode(), err
    assert proc.returncode in (0, 120, 141), err
