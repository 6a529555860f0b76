"""`native_loops`: runs a test once with the native loops of the fast capture path and once
with their Python references (`testbed.analysis.native`), so every capture case checks both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.analysis import native


@pytest.fixture(params=["native", "python"])
def native_loops(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "native":
        assert None not in (native.native_walk, native.native_gather,
                            native.native_frame_columns, native.native_group_reduce), \
            "the native loops (testbed/analysis/_native.c) were not built: run `make setup`"
    else:
        monkeypatch.setattr(native, "native_walk", None)
        monkeypatch.setattr(native, "native_gather", None)
        for name in ("native_frame_columns", "native_group_ids", "native_group_reduce",
                     "native_burst_starts", "native_canary_scan", "native_endpoint_rows",
                     "native_addr_find", "native_pcap_records"):
            monkeypatch.setattr(native, name, None)
        monkeypatch.setattr(native, "_noticed", True)  # no notice in the test's output
    yield request.param
