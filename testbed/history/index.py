"""The history index: one embedded SQLite file (default ``results/history.sqlite``) listing every
run with its status, verdicts, countries per variant and, for nightly runs, the regression
outcome. It is a cache of the run directories: ``reindex`` rebuilds it from them.

    index = History(path)
    index.record(run_dir, nightly=None) -> RunRecord    idempotent: re-recording updates the row
    index.runs(scenario, limit=None) -> list[RunRecord] newest first
    index.last_good(scenario, before=None) -> Path | None
    index.reindex(results_root) -> int                  every run dir under results_root
    index.sync(results_root) -> int                     only runs not yet (or not finally) indexed
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.history.diff import RunView, load_run
from testbed.history.errors import BadInput, HistoryError
from testbed.run.files import is_run
from testbed.run.liveness import LIVE_STATUSES

INDEX_NAME = "history.sqlite"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    scenario      TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    path          TEXT NOT NULL,
    started       REAL,
    finished      REAL,
    status        TEXT NOT NULL,
    n_pass        INTEGER NOT NULL,
    n_fail        INTEGER NOT NULL,
    n_inconclusive INTEGER NOT NULL,
    good          INTEGER NOT NULL,
    countries     TEXT NOT NULL,      -- JSON {variant: [country, ...]}
    nightly       INTEGER NOT NULL DEFAULT 0,
    baseline      TEXT,               -- run id the nightly compared with (NULL: none)
    regression    INTEGER,            -- nightly only: 1 regression, 0 none, NULL not judged
    notes         TEXT NOT NULL DEFAULT '[]',  -- JSON list of sentences
    recorded      REAL NOT NULL,
    PRIMARY KEY (scenario, run_id)
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (scenario, started);
CREATE TABLE IF NOT EXISTS verdicts (
    scenario TEXT NOT NULL, run_id TEXT NOT NULL, id TEXT NOT NULL,
    variant TEXT, status TEXT NOT NULL, reason TEXT,
    PRIMARY KEY (scenario, run_id, id)
);
CREATE TABLE IF NOT EXISTS countries (
    scenario TEXT NOT NULL, run_id TEXT NOT NULL, variant TEXT NOT NULL, country TEXT NOT NULL,
    PRIMARY KEY (scenario, run_id, variant, country)
);
"""


@dataclass
class NightlyResult:
    """What a nightly run concluded, stored with the run."""

    baseline: str | None  # run id of the last good run, None on the first run
    regression: bool
    notes: list[str] = field(default_factory=list)


@dataclass
class RunRecord:
    """One row of the index."""

    scenario: str
    run_id: str
    path: Path
    started: float | None
    finished: float | None
    status: str
    counts: dict[str, int]
    good: bool
    countries: dict[str, list[str]]
    nightly: bool
    baseline: str | None
    regression: bool | None
    notes: list[str]
    verdicts: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "run_id": self.run_id, "path": str(self.path),
                "started": self.started, "finished": self.finished, "status": self.status,
                "counts": self.counts, "good": self.good, "countries": self.countries,
                "nightly": self.nightly, "baseline": self.baseline,
                "regression": self.regression, "notes": self.notes, "verdicts": self.verdicts}


def default_index(results: Path) -> Path:
    """``<results>/history.sqlite``."""
    return Path(results) / INDEX_NAME


def run_dirs(results_root: Path) -> Iterator[Path]:
    """Every ``<results_root>/<scenario>/<run-id>/`` holding a manifest.json (reanalyses of a
    run live inside it and are not runs)."""
    root = Path(results_root)
    if not root.is_dir():
        return
    for scen in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for run in sorted(p for p in scen.iterdir() if p.is_dir()):
            if is_run(run):
                yield run


class History:
    """The SQLite index at ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=30)) as con:
                con.row_factory = sqlite3.Row
                with con:
                    con.executescript(_SCHEMA)
                    con.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                                (str(SCHEMA_VERSION),))
                with con:  # one transaction per use
                    yield con
        except sqlite3.DatabaseError as e:
            raise HistoryError(f"{self.path}: history index unusable: {e}") from e
        except OSError as e:
            raise HistoryError(f"{self.path}: cannot open history index: {e}") from e

    # -- writing ---------------------------------------------------------------------------
    def record(self, run_dir: Path, nightly: NightlyResult | None = None) -> RunRecord:
        """Store (or update) one run. Without ``nightly``, a nightly outcome already stored for
        the run is kept, so a reindex never forgets a regression."""
        view = load_run(Path(run_dir))
        with self._db() as con:
            self._record(con, view, nightly)
        rec = self.get(view.scenario, view.run_id)
        assert rec is not None
        return rec

    def _record(self, con: sqlite3.Connection, view: RunView,
                nightly: NightlyResult | None) -> None:
        counts = view.verdict_counts()
        countries = {v: sorted(view.countries(v)) for v in view.variants}
        key = (view.scenario, view.run_id)
        con.execute(
            """INSERT INTO runs (scenario, run_id, path, started, finished, status, n_pass,
                   n_fail, n_inconclusive, good, countries, nightly, baseline, regression,
                   notes, recorded)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (scenario, run_id) DO UPDATE SET
                   path=excluded.path, started=excluded.started, finished=excluded.finished,
                   status=excluded.status, n_pass=excluded.n_pass, n_fail=excluded.n_fail,
                   n_inconclusive=excluded.n_inconclusive, good=excluded.good,
                   countries=excluded.countries, recorded=excluded.recorded,
                   nightly=CASE WHEN ? THEN excluded.nightly ELSE runs.nightly END,
                   baseline=CASE WHEN ? THEN excluded.baseline ELSE runs.baseline END,
                   regression=CASE WHEN ? THEN excluded.regression ELSE runs.regression END,
                   notes=CASE WHEN ? THEN excluded.notes ELSE runs.notes END""",
            (*key, str(view.path.resolve()), view.started, view.finished, view.status,
             counts.get("pass", 0), counts.get("fail", 0), counts.get("inconclusive", 0),
             int(view.good), json.dumps(countries), int(nightly is not None),
             nightly.baseline if nightly else None,
             (int(nightly.regression) if nightly else None),
             json.dumps(nightly.notes if nightly else []), time.time(),
             *([nightly is not None] * 4)),
        )
        con.execute("DELETE FROM verdicts WHERE scenario=? AND run_id=?", key)
        con.executemany(
            "INSERT INTO verdicts VALUES (?, ?, ?, ?, ?, ?)",
            [(*key, vid, v.variant, v.status, v.reason)
             for vid, v in view.verdicts.items()])
        con.execute("DELETE FROM countries WHERE scenario=? AND run_id=?", key)
        con.executemany("INSERT INTO countries VALUES (?, ?, ?, ?)",
                        [(*key, v, c) for v, cs in countries.items() for c in cs])

    def reindex(self, results_root: Path, on_damaged: Callable[[str], None] | None = None) -> int:
        """Record every run directory under ``results_root`` and forget indexed runs of that
        root whose directory is gone; returns how many runs were recorded. A damaged run is
        left out (and its error handed to ``on_damaged``)."""
        root = Path(results_root).resolve()
        seen: set[tuple[str, str]] = set()
        n = 0
        with self._db() as con:
            for run in run_dirs(root):
                try:
                    view = load_run(run)
                except BadInput as e:  # a damaged run: not indexable, left for the user
                    if on_damaged:
                        on_damaged(str(e))
                    continue
                self._record(con, view, None)
                seen.add((view.scenario, view.run_id))
                n += 1
            for row in con.execute("SELECT scenario, run_id, path FROM runs").fetchall():
                p = Path(row["path"])
                if (row["scenario"], row["run_id"]) not in seen and p.is_relative_to(root) \
                        and not p.exists():
                    self._forget(con, row["scenario"], row["run_id"])
        return n

    def sync(self, results_root: Path, on_damaged: Callable[[str], None] | None = None) -> int:
        """Record runs under ``results_root`` that are not indexed yet, or were indexed while
        still running; returns how many were recorded (damaged runs: as ``reindex``)."""
        n = 0
        with self._db() as con:
            known = {row["path"]: row["status"]
                     for row in con.execute("SELECT path, status FROM runs")}
            for run in run_dirs(results_root):
                if known.get(str(run.resolve())) not in (None, *LIVE_STATUSES):
                    continue
                try:
                    view = load_run(run)
                except BadInput as e:
                    if on_damaged:
                        on_damaged(str(e))
                    continue
                self._record(con, view, None)
                n += 1
        return n

    @staticmethod
    def _forget(con: sqlite3.Connection, scenario: str, run_id: str) -> None:
        for table in ("runs", "verdicts", "countries"):
            con.execute(f"DELETE FROM {table} WHERE scenario=? AND run_id=?",
                        (scenario, run_id))

    # -- reading ---------------------------------------------------------------------------
    def _rec(self, con: sqlite3.Connection, row: sqlite3.Row) -> RunRecord:
        verdicts = [dict(v) for v in con.execute(
            "SELECT id, variant, status, reason FROM verdicts WHERE scenario=? AND run_id=? "
            "ORDER BY id", (row["scenario"], row["run_id"]))]
        return RunRecord(
            scenario=row["scenario"], run_id=row["run_id"], path=Path(row["path"]),
            started=row["started"], finished=row["finished"], status=row["status"],
            counts={"pass": row["n_pass"], "fail": row["n_fail"],
                    "inconclusive": row["n_inconclusive"]},
            good=bool(row["good"]), countries=json.loads(row["countries"]),
            nightly=bool(row["nightly"]), baseline=row["baseline"],
            regression=None if row["regression"] is None else bool(row["regression"]),
            notes=json.loads(row["notes"]), verdicts=verdicts)

    def get(self, scenario: str, run_id: str) -> RunRecord | None:
        with self._db() as con:
            row = con.execute("SELECT * FROM runs WHERE scenario=? AND run_id=?",
                              (scenario, run_id)).fetchone()
            return None if row is None else self._rec(con, row)

    def runs(self, scenario: str, limit: int | None = None) -> list[RunRecord]:
        """Runs of ``scenario``, newest first."""
        with self._db() as con:
            rows = con.execute(
                "SELECT * FROM runs WHERE scenario=? "
                "ORDER BY COALESCE(started, 0) DESC, run_id DESC LIMIT ?",
                (scenario, -1 if limit is None else limit)).fetchall()
            return [self._rec(con, r) for r in rows]

    def scenarios(self) -> list[str]:
        with self._db() as con:
            return [r[0] for r in con.execute("SELECT DISTINCT scenario FROM runs ORDER BY 1")]

    def last_good(self, scenario: str, before: str | Path | float | None = None) -> Path | None:
        """The newest good run (complete, every verdict passing) of ``scenario`` whose
        directory still exists; ``before``: a run id, run directory or epoch time, only runs
        that started earlier count."""
        with self._db() as con:
            query = "SELECT path, started, run_id FROM runs WHERE scenario=? AND good=1"
            params: list[Any] = [scenario]
            if before is not None:
                limit = self._start_of(con, scenario, before)
                query += " AND (COALESCE(started, 0) < ? OR (COALESCE(started, 0) = ? " \
                         "AND run_id < ?))"
                params += [limit[0], limit[0], limit[1]]
            query += " ORDER BY COALESCE(started, 0) DESC, run_id DESC"
            for row in con.execute(query, params):
                if is_run(Path(row["path"])):
                    return Path(row["path"])
        return None

    @staticmethod
    def _start_of(con: sqlite3.Connection, scenario: str,
                  before: str | Path | float) -> tuple[float, str]:
        if isinstance(before, int | float):
            return float(before), ""
        run_id = Path(before).name if isinstance(before, Path) else before
        row = con.execute("SELECT started FROM runs WHERE scenario=? AND run_id=?",
                          (scenario, run_id)).fetchone()
        if row is None:
            if isinstance(before, Path) and is_run(before):
                view = load_run(before)
                return view.started or 0.0, view.run_id
            raise BadInput(f"run {run_id} of {scenario} is not in the history index")
        return float(row["started"] or 0.0), run_id
