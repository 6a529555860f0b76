"""`record_walk`: runs a test once with the native record walk and once with the Python
reference walk (`testbed.analysis.recwalk`), so every capture case checks both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.analysis import recwalk


@pytest.fixture(params=["native", "python"])
def record_walk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "native":
        assert recwalk.native_walk is not None, \
            "the native record walk (testbed/analysis/_recwalk.c) was not built: run `make setup`"
    else:
        monkeypatch.setattr(recwalk, "native_walk", None)
        monkeypatch.setattr(recwalk, "_noticed", True)  # no notice in the test's output
    yield request.param
