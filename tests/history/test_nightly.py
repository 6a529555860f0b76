"""`testbed nightly` with an injected run function that writes hand-made runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testbed._errors import LabError
from testbed.history import nightly as nightly_mod
from testbed.history.errors import BadInput, HistoryError
from testbed.history.index import History
from testbed.history.nightly import find_nightly, nightly
from testbed.scenario import Scenario

from .conftest import BASE_ENDPOINTS, ROOT, T0, cli, make_run

CN_FOR_REGULAR = BASE_ENDPOINTS | {"regular": [*BASE_ENDPOINTS["regular"], "203.0.113.15"]}


class FakeLab:
    """Each call writes the next planned run (keyword arguments of make_run)."""

    def __init__(self, *plans: dict[str, Any] | Exception) -> None:
        self.plans = list(plans)
        self.calls: list[str] = []

    def __call__(self, scenario: Scenario, results: Path, progress: Any) -> Path:
        n = len(self.calls)
        self.calls.append(scenario.name)
        plan = self.plans[n]
        if isinstance(plan, Exception):
            raise plan
        progress(f"fake run {n}")
        return make_run(results, f"2026010{n + 1}T020000Z-000{n}", scenario=scenario.name,
                        started=T0 + 86400 * n, **plan)


def night(scenarios: Path, results: Path, lab: FakeLab) -> tuple[int, str]:
    lines: list[str] = []
    rep = nightly(scenarios, results, run=lab, out=lines.append)
    return rep.exit_code, "\n".join(lines)


def test_find_nightly_skips_profiles_data_and_non_nightly(scenarios):
    (scenarios / "off.yaml").write_text("scenario: off\nnightly: false\nclients: {}\n")
    (scenarios / "broken.yaml").write_text("{{{ not yaml")
    assert find_nightly(scenarios) == [scenarios / "skype-2013-lab.yaml"]
    with pytest.raises(BadInput):
        find_nightly(scenarios / "missing")


def test_the_shipped_nightly_scenarios_are_top_level_scenarios():
    found = find_nightly(ROOT / "scenarios")
    assert {p.name for p in found} >= {"skype-2013-lab.yaml", "firefox-lab.yaml"}
    assert all(p.parent == ROOT / "scenarios" for p in found), found


def test_first_run_has_no_baseline(scenarios, results):
    code, out = night(scenarios, results, FakeLab({}))
    assert code == 0
    assert "skype-2013-lab: no baseline" in out
    assert "skype-2013-lab: no regression" in out
    [rec] = History(results / "history.sqlite").runs("skype-2013-lab")
    assert rec.nightly and rec.baseline is None and rec.regression is False and rec.good


def test_first_run_with_a_failing_verdict_fails(scenarios, results):
    code, out = night(scenarios, results, FakeLab({"endpoints": CN_FOR_REGULAR}))
    assert code == 1
    assert "no baseline" in out and "FAILED" in out
    assert "verdict regular-never_reaches-country-CN: fail: regular reached CN" in out


def test_unchanged_then_regression(scenarios, results):
    lab = FakeLab({}, {}, {"endpoints": CN_FOR_REGULAR})
    assert night(scenarios, results, lab)[0] == 0
    code, out = night(scenarios, results, lab)
    assert code == 0
    assert "compared with the last good run 20260101T020000Z-0000" in out
    assert "no change" in out and "skype-2013-lab: no regression" in out

    code, out = night(scenarios, results, lab)
    assert code == 1
    assert "compared with the last good run 20260102T020000Z-0001" in out
    assert "regular: now reaches CN (new: 203.0.113.15 stands for 211.100.40.15)" in out
    assert "regular: new endpoint 203.0.113.15" in out
    assert "verdict regular-never_reaches-country-CN: pass -> fail (REGRESSION)" in out
    assert "skype-2013-lab: REGRESSION" in out
    assert "regression in skype-2013-lab" in out.splitlines()[-1]
    h = History(results / "history.sqlite")
    newest = h.runs("skype-2013-lab")[0]
    assert (newest.run_id, newest.regression, newest.baseline) == (
        "20260103T020000Z-0002", True, "20260102T020000Z-0001")
    assert newest.notes == ["verdict regular-never_reaches-country-CN: pass -> fail",
                            "regular now reaches CN"]
    # the regressed run is no baseline: tomorrow compares with the last good one again
    assert h.last_good("skype-2013-lab") == (
        results / "skype-2013-lab" / "20260102T020000Z-0001").resolve()


def test_new_country_without_verdict_change_is_printed_not_a_regression(scenarios, results):
    gb = BASE_ENDPOINTS | {"tom-en": [*BASE_ENDPOINTS["tom-en"], "198.51.100.50"]}
    lab = FakeLab({}, {"endpoints": gb})
    night(scenarios, results, lab)
    code, out = night(scenarios, results, lab)
    assert code == 0
    assert "tom-en: now reaches GB (new: 198.51.100.50 stands for 81.2.69.50)" in out
    assert "skype-2013-lab: no regression" in out
    assert "  - tom-en now reaches GB" in out
    rec = History(results / "history.sqlite").runs("skype-2013-lab")[0]
    assert (rec.regression, rec.notes) == (False, ["tom-en now reaches GB"])


@pytest.mark.parametrize("status", ["failed", "interrupted"])
def test_failed_run_is_a_regression(scenarios, results, status):
    lab = FakeLab({}, {"status": status, "analysed": False, "verdicts": {}})
    night(scenarios, results, lab)
    code, out = night(scenarios, results, lab)
    assert code == 1
    assert f"run status: complete -> {status}" in out
    assert f"the run {status}" in out and "REGRESSION" in out


def test_manual_runs_are_baselines_too(scenarios, results):
    make_run(results, "20251231T120000Z-manual", started=T0 - 1000)  # a `testbed run`
    code, out = night(scenarios, results, FakeLab({}))
    assert code == 0
    assert "compared with the last good run 20251231T120000Z-manual" in out


def test_a_new_failing_verdict_fails_but_is_no_regression(scenarios, results):
    lab = FakeLab({}, {"verdicts": {"regular-never_reaches-country-CN": ("pass", "ok"),
                                    "tom-en-reaches-country-CN": ("pass", "ok"),
                                    "tom-zh-reaches-country-CN": ("fail", "never reached CN")}})
    night(scenarios, results, lab)
    code, out = night(scenarios, results, lab)
    assert code == 1
    assert "FAILED (not a regression against the baseline)" in out
    assert "verdict tom-zh-reaches-country-CN: absent -> fail" in out


def test_invalid_nightly_scenario_and_run_errors_do_not_stop_the_others(scenarios, results):
    (scenarios / "a-broken.yaml").write_text("scenario: broken\nnightly: true\nclients: 3\n")
    lab = FakeLab(LabError("cannot make namespaces: not root"))
    code, out = night(scenarios, results, lab)
    assert code == 1
    assert "a-broken.yaml: not a valid scenario" in out
    assert "skype-2013-lab: ERROR: skype-2013-lab: the run could not be made: cannot make" in out
    assert lab.calls == ["skype-2013-lab"]


def test_no_nightly_scenarios_is_bad_input(tmp_path, results):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="no scenario marked 'nightly: true'"):
        nightly(tmp_path / "empty", results, run=FakeLab(), out=lambda m: None)


def test_one_nightly_at_a_time(scenarios, results):
    with nightly_mod._lock(results), pytest.raises(HistoryError, match="another testbed"):
        nightly(scenarios, results, run=FakeLab({}), out=lambda m: None)


def test_cli_nightly_bad_scenarios_folder(tmp_path, capsys):
    code, out, err = cli(capsys, "nightly", "--scenarios", str(tmp_path / "nope"),
                         "--results", str(tmp_path / "r"))
    assert code == 2 and out == ""
    assert err.strip() == f"testbed: {tmp_path / 'nope'}: no such scenarios folder"
