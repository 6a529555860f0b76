"""``testbed report`` refuses a folder that is not a run: one line, exit 2, nothing written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from testbed.cli import main
from testbed.run import files as f
from tests.support import SEED_RUN


def make(files: dict[str, bytes]) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        folder = tmp / "folder"
        folder.mkdir()
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        return folder
    return build


def a_run_without_its_manifest(tmp: Path) -> Path:
    run = tmp / "skype-2013-lab" / "seed-run"
    shutil.copytree(SEED_RUN, run, ignore=shutil.ignore_patterns("expected"))
    (run / f.MANIFEST).unlink()
    return run


NOT_RUNS: dict[str, Callable[[Path], Path]] = {
    "an empty folder": make({}),
    "a home folder": make({".bashrc": b"alias ll='ls -l'\n", "notes.txt": b"todo\n"}),
    "a folder of photos": make({"a.png": b"\x89PNG\r\n", "b.jpg": b"\xff\xd8\xff"}),
    "a results folder (runs below it)": lambda tmp: (a_run_without_its_manifest(tmp).parents[1]),
    "a scenario's folder in results": lambda tmp: (a_run_without_its_manifest(tmp).parent),
    "a run's capture folder": lambda tmp: a_run_without_its_manifest(tmp) / f.CAPTURE_DIR,
    "a folder with only a report": make({f.REPORT: b"<html>old</html>"}),
    "a folder whose manifest is a folder": make({f"{f.MANIFEST}/x": b""}),
    "a file": lambda tmp: (tmp / "file.txt", (tmp / "file.txt").write_text("x"))[0],
    "a path that does not exist": lambda tmp: tmp / "nowhere",
}


def listing(path: Path) -> dict[str, tuple[int, int]]:
    if not path.is_dir():
        return {}
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in path.rglob("*")}


@pytest.mark.parametrize("what", NOT_RUNS)
def test_report_refuses_a_folder_that_is_not_a_run(
        tmp_path: Path, what: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = NOT_RUNS[what](tmp_path)
    before = listing(folder)
    assert main(["report", str(folder)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    why = "no such folder" if not folder.is_dir() else f"no {f.MANIFEST}"
    assert err.splitlines() == [f"testbed: {folder}: not a run directory ({why}); no report "
                                "written"]
    assert listing(folder) == before  # nothing written there
    assert not (folder / f.REPORT).exists() or what == "a folder with only a report"


def test_the_refusal_from_the_shell(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "testbed", "report", str(tmp_path)],
                         capture_output=True, text=True, timeout=120,
                         env=os.environ | {"PYTHONWARNINGS": "ignore"})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr == f"testbed: {tmp_path}: not a run directory (no manifest.json); no " \
        "report written\n"
    assert list(tmp_path.iterdir()) == []


def test_a_run_still_gets_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "skype-2013-lab" / "seed-run"
    shutil.copytree(SEED_RUN, run, ignore=shutil.ignore_patterns("expected"))
    assert main(["report", str(run)]) == 0
    assert (run / f.REPORT).is_file()


@pytest.mark.parametrize("what", ["an empty folder", "a home folder",
                                  "a folder with only a report"])
def test_analyze_touches_nothing_in_a_folder_that_never_was_a_run(
        tmp_path: Path, what: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = NOT_RUNS[what](tmp_path)
    (folder / f.VERDICTS).write_text('{"verdicts": []}')  # a file of that name, by chance
    before = listing(folder)
    assert main(["analyze", str(folder)]) == 1
    assert "not a run directory" in capsys.readouterr().err
    assert listing(folder) == before
