"""Verdicts only from evidence that exists now: ``testbed analyze RUN`` on copies of the
recorded seed run, each with one of the run's files (every name of ``testbed.run.files``)
missing, empty, garbage or cut in half.

Every case either judges the run afresh (every verdicts.json, junit.xml and report.html in the
run was written by this command) or refuses with one line and exit 2, leaving none of the run's
earlier verdicts, junit.xml, report or analysis behind. No negative claim passes when a file it
rests on was damaged (a *vacuous* pass); no earlier verdict outlives a failed re-analysis (a
*stale* pass). Damage to a file no claim rests on (logs, the scenario copy, what analysis
itself writes) changes nothing: the same 8 verdicts as the intact run.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed.cli import main
from testbed.run import files as f
from tests.support import SEED_RUN, analysed_seed

MODES = ("missing", "empty", "garbage", "truncated")
#: every file of a run, by its name in testbed.run.files
RUN_FILES = sorted({value for name, value in vars(f).items()
                    if name.isupper() and isinstance(value, str) and "." in Path(value).name})
#: and its folders: gone, or a file where the folder belongs
RUN_DIRS = sorted({f.CAPTURE_DIR, f.LAB_DIR, f.ANALYSIS_DIR, f.SCREENSHOTS_DIR, f.GEO_DIR})
DIR_MODES = ("missing", "a file")
#: the files each kind of claim rests on: damage to one of them may not leave the claim PASS
#: when the claim is negative (it would pass on absence of evidence that is gone)
NEGATIVE_SOURCES = {
    "never_reaches": {f.MANIFEST, f.EVENTS, f.PCAP, f.INTERNET},
    "only_reaches": {f.MANIFEST, f.EVENTS, f.PCAP, f.INTERNET},
    "does_not_pass_through": {f.MANIFEST, f.EVENTS, f.PCAP, f.FLOWS, f.TLS, f.INTERNET},
    "not_delivered": {f.MANIFEST, f.EVENTS},
}
SOURCES = set().union(*NEGATIVE_SOURCES.values())


def damage(path: Path, mode: str) -> None:
    if path.is_dir() or mode == "a file":
        shutil.rmtree(path, ignore_errors=True)
        if mode == "a file":
            path.write_text("not a folder\n")
    elif mode == "missing":
        path.unlink(missing_ok=True)
    elif mode == "empty":
        path.write_bytes(b"")
    elif mode == "garbage":
        path.write_bytes(bytes(range(256)) * 4)
    else:
        data = path.read_bytes() if path.exists() else b""
        path.write_bytes(data[: len(data) // 2])


@dataclass(frozen=True)
class Outcome:
    name: str
    mode: str
    code: int
    out: str
    err: str
    verdicts: list[dict[str, object]] | None  # this command's, None when it wrote none
    stale: list[str]  # files of the run left from before the command

    @property
    def damaged(self) -> set[str]:
        """The run's files the damage took: the file, or every file of the folder."""
        return {n for n in RUN_FILES if n == self.name or n.startswith(self.name + "/")}

    @property
    def vacuous(self) -> list[str]:
        """The negative claims that passed though a file they rest on was damaged."""
        return [str(v["id"]) for v in self.verdicts or () if v["status"] == "pass"
                and self.damaged & NEGATIVE_SOURCES.get(str(v["kind"]), set())]

    @property
    def stale_pass(self) -> bool:
        """Earlier results stand, or the command said PASS and exit 0 on evidence it lacks."""
        return bool(self.stale) or (self.code == 0 and bool(self.damaged & SOURCES)
                                    and "  PASS " in self.out and self.verdicts is None)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed run, analysed and judged once (8 PASS): the earlier results every case has."""
    return analysed_seed(tmp_path_factory)


def analyse_damaged(analysed: Path, tmp: Path, name: str, mode: str,
                    capsys: pytest.CaptureFixture[str]) -> Outcome:
    run = tmp / "skype-2013-lab" / "seed-run"
    shutil.copytree(analysed, run)
    old = [p for p in run.rglob("*") if p.is_file()
           and str(p.relative_to(run)) in (*f.DERIVED, f.CAPTURE_SCAN, f.FLOWS_SCAN)]
    for p in old:
        os.utime(p, ns=(0, 0))  # what the command leaves with this time is from before it
    damage(run / name, mode)
    capsys.readouterr()
    code = main(["analyze", str(run)])
    out, err = capsys.readouterr()
    stale = [n for n in f.DERIVED if (run / n).is_file() and (run / n).stat().st_mtime_ns == 0
             and n != name and not n.startswith(name + "/")]
    verdicts = None
    if (run / f.VERDICTS).exists() and (run / f.VERDICTS).stat().st_mtime_ns:
        verdicts = json.loads((run / f.VERDICTS).read_text())["verdicts"]
    return Outcome(name, mode, code, out, err, verdicts, stale)


CASES = [(name, mode) for name in RUN_FILES for mode in MODES] + [
    (name, mode) for name in RUN_DIRS for mode in DIR_MODES]


@pytest.mark.parametrize(("name", "mode"), CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_a_damaged_run_is_judged_afresh_or_refused(analysed: Path, tmp_path: Path, name: str,
                                                   mode: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    o = analyse_damaged(analysed, tmp_path, name, mode, capsys)
    assert "Traceback" not in o.err
    assert not o.stale, f"{name} {mode}: earlier {o.stale} left standing (exit {o.code})"
    assert not o.vacuous, f"{name} {mode}: {o.vacuous} passed on evidence that is gone"
    if o.verdicts is None:  # refused: one line naming what is wrong, nothing of before left
        assert o.code != 0
        lines = o.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("testbed: "), o.err
        assert "the run is not judged" in lines[0]
    if not o.damaged & SOURCES and o.verdicts is None:  # a folder analysis cannot write in
        assert name in o.err and mode == "a file", o.err
    elif not o.damaged & SOURCES:  # no claim rests on it: the run judges as it did
        assert o.code == 0, o.out + o.err
        assert [v["status"] for v in o.verdicts or ()] == ["pass"] * 8


def test_counts_no_stale_and_no_vacuous_pass(analysed: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's counts over the whole family at once. Before this change, of the 82 cases
    19 left the earlier 8 PASS standing, 21 negative claims passed vacuously (in 11 cases),
    and 3 gave a traceback (a garbage lab/internet.yaml; a file where analysis/ or
    analysis/geo/ belongs)."""
    outcomes = [analyse_damaged(analysed, tmp_path / f"{i}", name, mode, capsys)
                for i, (name, mode) in enumerate(CASES)]
    stale = [f"{o.name} {o.mode}" for o in outcomes if o.stale_pass]
    vacuous = [f"{o.name} {o.mode}: {v}" for o in outcomes for v in o.vacuous]
    assert len(outcomes) == len(RUN_FILES) * 4 + len(RUN_DIRS) * 2 >= 70
    assert (stale, vacuous) == ([], [])


CAPTURED = {"never_reaches", "only_reaches", "does_not_pass_through"}  # rest on the capture
ALL = set(NEGATIVE_SOURCES)


def _manifest_edits() -> dict[str, tuple[object, set[str]]]:
    """name -> (how the manifest is changed, the negative kinds of claim that lose their
    evidence): a dict replaces keys (None deletes), a string is the whole file."""
    m = json.loads((SEED_RUN / f.MANIFEST).read_text())
    exps = m["expectations"]
    return {
        "empty object": ("{}", set()),
        "not an object": ("[]", set()),
        "expectations not a list": ({"expectations": "all of them"}, set()),
        "expectation of an unknown kind": (
            {"expectations": [exps[0] | {"kind": "sometimes_reaches"}, *exps[1:]]}, set()),
        "expectation without an id": ({"expectations": [{"kind": "reaches"}]}, set()),
        "expectations about an unknown variant": (
            {"expectations": [e | {"variant": "ghost"} if not e["chat"] else
                              e | {"chat": e["chat"] | {"from": "ghost"}} for e in exps]}, ALL),
        "no guests": ({"guests": None}, ALL),
        "no capture statistics": ({"capture": None}, CAPTURED),
        "capture not stopped cleanly": ({"capture": m["capture"] | {"complete": False}}, CAPTURED),
        "no canary": ({"canary": None}, {"does_not_pass_through"}),
        "no infrastructure": ({"infrastructure": None}, set()),
    }


MANIFEST_EDITS = _manifest_edits()


@pytest.mark.parametrize("edit", MANIFEST_EDITS)
def test_a_manifest_with_bad_expectations_or_facts(analysed: Path, tmp_path: Path, edit: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "skype-2013-lab" / "seed-run"
    shutil.copytree(analysed, run)
    for name in f.DERIVED:
        os.utime(run / name, ns=(0, 0))
    change, losing = MANIFEST_EDITS[edit]
    if isinstance(change, str):
        (run / f.MANIFEST).write_text(change)
    else:
        m = json.loads((run / f.MANIFEST).read_text())
        assert isinstance(change, dict)
        for key, value in change.items():
            if value is None:
                m.pop(key, None)
            else:
                m[key] = value
        (run / f.MANIFEST).write_text(json.dumps(m))
    capsys.readouterr()
    code = main(["analyze", str(run)])
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    stale = [n for n in f.DERIVED if (run / n).exists() and (run / n).stat().st_mtime_ns == 0]
    assert stale == [], (edit, stale)
    assert code != 0 or edit == "no infrastructure", (edit, err)
    if not (run / f.VERDICTS).exists():
        assert len(err.strip().splitlines()) == 1 and f.MANIFEST in err, err
        return
    verdicts = json.loads((run / f.VERDICTS).read_text())["verdicts"]
    passed = [v["id"] for v in verdicts if v["kind"] in losing and v["status"] == "pass"]
    assert passed == [], (edit, passed)
