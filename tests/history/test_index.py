"""The SQLite history index and `testbed history`."""

from __future__ import annotations

import json
import shutil
import sqlite3

from testbed.history.index import History, NightlyResult

from .conftest import BASE_ENDPOINTS, T0, cli, make_run


def test_record_stores_the_run(results):
    run = make_run(results, "r1")
    h = History(results / "history.sqlite")
    rec = h.record(run)
    assert (rec.scenario, rec.run_id, rec.status, rec.good) == (
        "skype-2013-lab", "r1", "complete", True)
    assert rec.path == run.resolve()
    assert (rec.started, rec.finished) == (T0, T0 + 20)
    assert rec.counts == {"pass": 2, "fail": 0, "inconclusive": 0}
    # special-purpose addresses are no country
    assert rec.countries == {"regular": ["LU", "US"], "tom-en": ["CN", "US"]}
    assert {v["id"]: v["status"] for v in rec.verdicts} == {
        "regular-never_reaches-country-CN": "pass", "tom-en-reaches-country-CN": "pass"}
    assert not rec.nightly and rec.regression is None
    con = sqlite3.connect(results / "history.sqlite")
    assert con.execute("SELECT country FROM countries WHERE variant='tom-en' ORDER BY 1")\
        .fetchall() == [("CN",), ("US",)]


def test_record_is_idempotent_and_updates(results):
    run = make_run(results, "r1")
    h = History(results / "history.sqlite")
    h.record(run)
    h.record(run)
    assert len(h.runs("skype-2013-lab")) == 1
    # the run's verdicts are re-judged (testbed analyze): re-recording updates the row
    (run / "verdicts.json").write_text(json.dumps({"verdicts": [
        {"id": "regular-never_reaches-country-CN", "variant": "regular",
         "status": "inconclusive", "reason": "lossy capture"}]}))
    [rec] = h.runs("skype-2013-lab")
    assert rec.good
    rec = h.record(run)
    assert rec.counts == {"pass": 0, "fail": 0, "inconclusive": 1} and not rec.good
    assert [v["id"] for v in rec.verdicts] == ["regular-never_reaches-country-CN"]
    assert len(h.runs("skype-2013-lab")) == 1


def test_nightly_outcome_survives_a_plain_re_record(results):
    run = make_run(results, "r1", status="failed")
    h = History(results / "history.sqlite")
    h.record(run, NightlyResult(baseline="r0", regression=True, notes=["the run failed"]))
    rec = h.record(run)  # e.g. a reindex
    assert (rec.nightly, rec.baseline, rec.regression, rec.notes) == (
        True, "r0", True, ["the run failed"])


def test_last_good(results):
    h = History(results / "history.sqlite")
    assert h.last_good("skype-2013-lab") is None
    r1 = make_run(results, "r1", started=T0)
    r2 = make_run(results, "r2", started=T0 + 100)
    r3 = make_run(results, "r3", started=T0 + 200, status="failed")
    r4 = make_run(results, "r4", started=T0 + 300,
                  endpoints=BASE_ENDPOINTS | {"regular": ["203.0.113.15"]})  # a failing verdict
    r5 = make_run(results, "r5", started=T0 + 400, verdicts={})  # complete but no verdicts
    for r in (r1, r2, r3, r4, r5):
        h.record(r)
    assert h.last_good("skype-2013-lab") == r2.resolve()
    assert h.last_good("skype-2013-lab", before="r2") == r1.resolve()
    assert h.last_good("skype-2013-lab", before=r5) == r2.resolve()
    assert h.last_good("skype-2013-lab", before=T0 + 50) == r1.resolve()
    assert h.last_good("skype-2013-lab", before="r1") is None
    assert h.last_good("other") is None
    shutil.rmtree(r2)  # a deleted run cannot be a baseline
    assert h.last_good("skype-2013-lab") == r1.resolve()


def test_reindex_scans_and_forgets_deleted_runs(results):
    r1 = make_run(results, "r1")
    make_run(results, "r2", started=T0 + 100, scenario="other")
    (results / "skype-2013-lab" / "not-a-run").mkdir()
    (results / ".lab-ca").mkdir()
    h = History(results / "history.sqlite")
    assert h.reindex(results) == 2
    assert h.reindex(results) == 2  # idempotent
    assert [r.run_id for r in h.runs("skype-2013-lab")] == ["r1"]
    assert h.scenarios() == ["other", "skype-2013-lab"]
    shutil.rmtree(r1)
    assert h.reindex(results) == 1
    assert h.runs("skype-2013-lab") == []


def test_sync_adds_only_new_or_running_runs(results):
    h = History(results / "history.sqlite")
    make_run(results, "r1")
    r2 = make_run(results, "r2", started=T0 + 100, status="running", analysed=False,
                  verdicts={})
    assert h.sync(results) == 2
    assert h.sync(results) == 1  # r2 was running: looked at again
    manifest = json.loads((r2 / "manifest.json").read_text())
    (r2 / "manifest.json").write_text(json.dumps(manifest | {"status": "interrupted"}))
    assert h.sync(results) == 1
    assert h.sync(results) == 0
    assert h.runs("skype-2013-lab")[0].status == "interrupted"


def test_history_command_table(results, capsys):
    make_run(results, "20260101T020000Z-aaaa", started=T0)
    r2 = make_run(results, "20260102T020000Z-bbbb", started=T0 + 86400,
                  endpoints=BASE_ENDPOINTS | {"regular": ["198.51.100.10", "203.0.113.15"]})
    History(results / "history.sqlite").record(r2, NightlyResult(
        baseline="20260101T020000Z-aaaa", regression=True,
        notes=["verdict regular-never_reaches-country-CN: pass -> fail"]))
    code, out, err = cli(capsys, "history", "skype-2013-lab", "--results", str(results))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["date", "run", "id"]
    assert "20260102T020000Z-bbbb" in lines[1] and "20260101T020000Z-aaaa" in lines[2]
    assert "1/1/0" in lines[1] and "2/0/0" in lines[2]
    assert "regular: CN US" in lines[1] and "tom-en: CN US" in lines[1]
    assert "REGRESSION vs 20260101T020000Z-aaaa" in lines[1]
    assert "pass -> fail" in lines[1]
    assert "2027-01-15 08:00Z" in lines[2]  # T0, UTC

    code, out, _ = cli(capsys, "history", "skype-2013-lab", "--results", str(results),
                       "--json", "--limit", "1")
    data = json.loads(out)
    assert code == 0 and [r["run_id"] for r in data] == ["20260102T020000Z-bbbb"]
    assert data[0]["regression"] is True and data[0]["countries"]["regular"] == ["CN", "US"]


def test_history_unknown_scenario_and_bad_limit(results, capsys):
    make_run(results, "r1")
    code, out, err = cli(capsys, "history", "nope", "--results", str(results))
    assert code == 2 and out == ""
    assert err.strip() == (f"testbed: no runs of 'nope' in {results}/history.sqlite "
                           "(scenarios with runs: skype-2013-lab)")
    code, _, err = cli(capsys, "history", "skype-2013-lab", "--results", str(results),
                       "--limit", "0")
    assert code == 2 and "--limit" in err


def test_history_index_option_and_reindex(results, tmp_path, capsys):
    make_run(results, "r1")
    index = tmp_path / "elsewhere" / "h.sqlite"
    code, out, _ = cli(capsys, "history", "skype-2013-lab", "--results", str(results),
                       "--index", str(index), "--reindex")
    assert code == 0 and "r1" in out and index.is_file()
    assert not (results / "history.sqlite").exists()
