"""Run the pytest plugin on one run directory: junit.xml and verdicts.json are written there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.verdicts.evaluate import Verdict


def check_run(run: Path, quiet: bool = True) -> list[Verdict]:
    args = [str(run), f"--junitxml={run / 'junit.xml'}", "-p", "no:cacheprovider",
            f"--rootdir={run}", "-o", "junit_suite_name=testbed", "-o", "addopts=",
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    args += ["-q", "--no-header", "-rfs"] if quiet else []
    pytest.main(args)
    data = json.loads((run / "verdicts.json").read_text()) if (run / "verdicts.json").exists() \
        else {"verdicts": []}
    return [Verdict(**v) for v in data["verdicts"]]
