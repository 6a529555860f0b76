"""The seed study's outputs are pinned: a real lab run's capture (``tests/data/seed-run``,
recorded by ``make experiment``) re-analysed today gives the same ``endpoints.csv``,
``evidence.json`` and ``verdicts.json`` as the code that recorded it. Only the absolute
paths of the GeoIP files differ between machines, so they are compared by file name."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testbed._digest import file_sha256
from tests.support import SEED_RUN


def _without_paths(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: Path(v).name if k == "file" and isinstance(v, str) else _without_paths(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_without_paths(v) for v in value]
    return value


@pytest.mark.parametrize("internet", ["as recorded", "with its digest"])
def test_reanalysis_of_the_seed_run_gives_the_recorded_outputs(tmp_path, internet):
    """As recorded, the run's manifest names no digest of the lab's map (older runs), so the
    analysis checks the map; a run made today records it, and the analysis reads the map
    without checking it again: the same outputs either way."""
    run = tmp_path / "skype-2013-lab" / "seed-run"
    shutil.copytree(SEED_RUN, run, ignore=shutil.ignore_patterns("expected"))
    if internet == "with its digest":
        manifest = json.loads((run / "manifest.json").read_text())
        assert "internet" not in manifest
        manifest["internet"] = {"sha256": file_sha256(run / "lab" / "internet.yaml")}
        (run / "manifest.json").write_text(json.dumps(manifest))
    out = subprocess.run([sys.executable, "-m", "testbed", "analyze", str(run)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    expected = SEED_RUN / "expected"
    assert (run / "analysis" / "endpoints.csv").read_text() == \
        (expected / "endpoints.csv").read_text()
    assert json.loads((run / "analysis" / "evidence.json").read_text()) == \
        json.loads((expected / "evidence.json").read_text())
    got = _without_paths(json.loads((run / "verdicts.json").read_text()))
    want = _without_paths(json.loads((expected / "verdicts.json").read_text()))
    assert [v["id"] for v in got["verdicts"]] == [v["id"] for v in want["verdicts"]]
    for mine, theirs in zip(got["verdicts"], want["verdicts"], strict=True):
        assert mine == theirs, f"verdict {theirs['id']} changed"
