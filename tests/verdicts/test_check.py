"""Judging a run without pytest (``testbed run`` / ``testbed analyze``) and with it (``pytest
RUN``, through the plugin): the same verdicts, and junit.xml as pytest writes it."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from testbed.run import files as f
from tests.support import SEED_RUN

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """The seed run, analysed, with one claim turned false and one made unanswerable."""
    run = tmp_path / "skype-2013-lab" / "seed-run"
    shutil.copytree(SEED_RUN, run, ignore=shutil.ignore_patterns("expected"))
    manifest = json.loads((run / f.MANIFEST).read_text())
    manifest["expectations"][2]["kind"] = "never_reaches"  # tom-en does reach CN: fail
    manifest["expectations"][5]["chat"]["to"] = "tom-en"  # no such message: inconclusive
    (run / f.MANIFEST).write_text(json.dumps(manifest))
    return run


def test_only_the_plugin_imports_pytest() -> None:
    users = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "testbed").rglob("*.py")
                   if any(isinstance(n, ast.Import | ast.ImportFrom) and any(
                       (getattr(n, "module", None) or a.name).split(".")[0] == "pytest"
                       for a in n.names) for n in ast.walk(ast.parse(p.read_text()))))
    assert users == ["testbed/verdicts/plugin.py"]


def test_analyze_judges_without_pytest_and_agrees_with_the_plugin(run: Path) -> None:
    code = ("import sys; from testbed.cli import main; rc = main(['analyze', sys.argv[1]]); "
            "assert 'pytest' not in sys.modules, 'pytest was imported'; sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr  # one fail, one inconclusive
    assert "expectation failed: tom-en never reaches CN" in out.stdout
    assert "INCONCLUSIVE" in out.stdout and "Traceback" not in out.stderr
    direct = json.loads((run / f.VERDICTS).read_text())
    statuses = [v["status"] for v in direct["verdicts"]]
    assert statuses == ["pass", "pass", "fail", "pass", "pass", "inconclusive", "pass", "pass"]

    suite = ET.parse(run / f.JUNIT).getroot()
    assert suite.tag == "testsuites" and suite.get("name") == "pytest tests"
    (tests,) = suite
    assert {k: tests.get(k) for k in ("name", "tests", "failures", "skipped", "errors")} == {
        "name": "testbed", "tests": "8", "failures": "1", "skipped": "1", "errors": "0"}
    cases = {c.get("name"): c for c in tests}
    assert all(c.get("classname") == f.MANIFEST for c in cases.values())
    failed = cases["tom-en-reaches-country-CN"]
    assert failed.find("properties/property").attrib == {"name": "verdict", "value": "fail"}
    failure = failed.find("failure")
    assert failure is not None and failure.text
    assert failure.text.startswith("expectation failed: tom-en never reaches CN\n  tom-en "
                                   "reached CN: 203.0.113.15")
    assert failure.get("message", "").endswith("more lines; full report in element text]")
    skipped = cases["chat-with-regular-peer-stays-out-of-china"].find("skipped")
    assert skipped is not None and skipped.get("message") == (
        "inconclusive: the chat '六四' from regular to tom-en was not sent: no such message "
        "in this run")

    (run / f.VERDICTS).unlink()
    plain = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            f"--rootdir={run}", "-o", "addopts=", str(run)],
                           capture_output=True, text=True, timeout=120)
    assert "1 failed, 6 passed, 1 skipped" in plain.stdout, plain.stdout + plain.stderr
    assert json.loads((run / f.VERDICTS).read_text()) == direct


def test_an_evaluation_that_raises_is_recorded_not_lost(run: Path) -> None:
    from testbed.verdicts.check import check_run

    manifest = json.loads((run / f.MANIFEST).read_text())
    manifest["expectations"][0]["kind"] = "sometimes_reaches"
    (run / f.MANIFEST).write_text(json.dumps(manifest))
    verdicts = check_run(run)
    assert len(verdicts) == 8 and verdicts[0].status == "inconclusive"
    assert verdicts[0].reason == (
        "the expectation could not be evaluated: ValueError: regular-never_reaches-country-CN: "
        "unknown kind of expectation 'sometimes_reaches'")
    case = ET.parse(run / f.JUNIT).getroot().find("testsuite/testcase")
    assert case is not None and case.find("properties/property") is None
    failure = case.find("failure")
    assert failure is not None and "Traceback" in (failure.text or "")
    assert failure.get("message", "").startswith("ValueError: regular-never_reaches")
