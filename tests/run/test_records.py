"""The run's records: exact round trips, older runs' files, damaged files named."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testbed._errors import RunFileError
from testbed.run import (
    EndpointsFile,
    Event,
    EvidenceFile,
    Manifest,
    Placement,
    TlsRecord,
    Verdict,
    VerdictsFile,
    store,
)
from testbed.run import files as f
from tests.support import SEED_RUN


def _text(data: Any) -> str:
    """JSON text, key order included."""
    return json.dumps(data, ensure_ascii=False)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed run, analysed and judged by ``testbed analyze``."""
    run = tmp_path_factory.mktemp("results") / "skype-2013-lab" / "seed-run"
    shutil.copytree(SEED_RUN, run, ignore=shutil.ignore_patterns("expected"))
    out = subprocess.run([sys.executable, "-m", "testbed", "analyze", str(run)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return run


def test_every_file_of_a_run_round_trips_exactly(analysed: Path) -> None:
    files = ((f.MANIFEST, Manifest.from_json), (f.ENDPOINTS, EndpointsFile.from_json),
             (f.EVIDENCE, EvidenceFile.from_json), (f.VERDICTS, VerdictsFile.from_json))
    for name, parse in files:
        raw = json.loads((analysed / name).read_text())
        assert _text(parse(raw).to_json()) == _text(raw), name
    events = _lines(analysed / f.EVENTS)
    assert events and [_text(Event.from_json(e).to_json()) for e in events] == [
        _text(e) for e in events]
    tls = _lines(analysed / f.TLS)  # written by the capture addon, only read here
    assert tls and [TlsRecord.from_json(t).to_json() for t in tls] == tls
    # the readers give the same records; the writers write the same bytes
    endpoints = store.read_endpoints(analysed)
    assert endpoints is not None
    before = (analysed / f.ENDPOINTS).read_bytes()
    store.write_endpoints(analysed, endpoints)
    assert (analysed / f.ENDPOINTS).read_bytes() == before
    verdicts = store.read_verdicts(analysed)
    assert verdicts and all(v.passed for v in verdicts)


def test_a_placement_has_the_thirteen_keys_endpoints_json_always_had(analysed: Path) -> None:
    endpoints = store.read_endpoints(analysed)
    assert endpoints is not None
    placed = endpoints.place("203.0.113.15")
    assert list(placed.to_json()) == [
        "special", "stands_for", "names", "country", "country_name", "database", "network",
        "via", "asn", "organization", "views", "countries", "disagree"]
    assert placed.country == "CN" and placed.stands_for == "211.100.40.15"
    assert placed.views[0].database is not None and placed.views[0].via == "address"
    assert endpoints.place("192.0.2.254") == Placement()  # never seen: placed nowhere
    with pytest.raises(dataclasses.FrozenInstanceError):
        placed.country = "US"  # type: ignore[misc]


def test_an_older_runs_files_load_with_defaults(tmp_path: Path) -> None:
    (tmp_path / f.MANIFEST).write_text(json.dumps(
        {"run_id": "old", "status": "failed", "guests": {"regular": "10.77.0.10"},
         "expectations": [{"id": "x"}], "someday": {"a": 1}}))
    (tmp_path / f.EVENTS).write_text('{"variant": "regular", "action": "launch"}\n')
    (tmp_path / "analysis").mkdir()
    (tmp_path / f.ENDPOINTS).write_text(json.dumps({
        "endpoints": [{"variant": "regular", "address": "198.51.100.10", "proto": "tcp",
                       "port": 443}],
        "places": {"198.51.100.10": {"country": "US", "asn": "8075", "new_key": True}}}))
    (tmp_path / f.VERDICTS).write_text(json.dumps(  # the oldest form: a bare list
        [{"id": "x", "status": "pass", "reason": "fine"}]))
    manifest = store.open_manifest(tmp_path)
    assert manifest.status == "failed" and manifest.capture is None and manifest.canary is None
    assert manifest.expectations[0].kind == "" and manifest.address_to_variant == {
        "10.77.0.10": "regular"}
    assert manifest.extra == {"someday": {"a": 1}}  # kept, so rewriting loses nothing
    assert manifest.updated(status="complete").to_json()["someday"] == {"a": 1}
    (event,), skipped = store.read_events(tmp_path)
    assert skipped == 0 and event.outcome is None and not event.ok and not event.timed
    endpoints = store.read_endpoints(tmp_path)
    assert endpoints is not None and endpoints.variants == () and endpoints.geoip == ()
    assert endpoints.endpoints[0].bytes_in == 0 and endpoints.stats.packets_read is None
    assert endpoints.place("198.51.100.10").asn == 8075
    assert store.read_verdicts(tmp_path) == [
        Verdict(id="x", variant="", kind="", place={}, status="pass", reason="fine")]
    assert store.read_evidence(tmp_path) is None  # not there: no evidence, not an error


@pytest.mark.parametrize(("name", "content", "says"), [
    (f.MANIFEST, "{not json", "unreadable: not JSON"),
    (f.MANIFEST, '["a list"]', "damaged: the manifest: expected an object, not list"),
    (f.MANIFEST, '{"guests": {"regular": 10}}', "guests['regular'] should be a string"),
    (f.ENDPOINTS, '{"places": {"1.2.3.4": {"views": ["junk"]}}}',
     "damaged: places['1.2.3.4']: views[0]: expected an object, not str"),
    (f.ENDPOINTS, '{"endpoints": [{"variant": "x"}]}', "endpoints[0]: 'address' is missing"),
    (f.VERDICTS, '{"verdicts": [{"id": "x", "status": 1}]}', "'status' should be a string"),
    (f.VERDICTS, '{"results": []}', "no 'verdicts' list"),
    (f.EVIDENCE, '{"chats": [{"sender": "a"}]}', "chats[0]: 'recipient' is missing"),
    (f.EVENTS, '{"variant": "a", "action": "b"}\n{"truncated": \n', "line 2 damaged"),
])
def test_a_damaged_file_is_one_error_naming_it(tmp_path: Path, name: str, content: str,
                                               says: str) -> None:
    (tmp_path / f.MANIFEST).write_text("{}")
    (tmp_path / name).parent.mkdir(exist_ok=True)
    (tmp_path / name).write_text(content)
    readers = {f.MANIFEST: store.open_manifest, f.ENDPOINTS: store.read_endpoints,
               f.VERDICTS: store.read_verdicts, f.EVIDENCE: store.read_evidence,
               f.EVENTS: store.read_events}
    with pytest.raises(RunFileError) as err:
        readers[name](tmp_path)
    assert err.value.path == tmp_path / name
    assert str(err.value).startswith(f"{tmp_path / name}: ") and says in str(err.value)
    assert "\n" not in str(err.value)


def test_damaged_lines_can_be_skipped_and_counted(tmp_path: Path) -> None:
    (tmp_path / f.EVENTS).write_text('{"variant": "a", "action": "b"}\n[1]\n{"x": \n')
    events, skipped = store.read_events(tmp_path, skip_damaged=True)
    assert [e.action for e in events] == ["b"] and skipped == 2


def test_tls_records_type_what_the_addon_writes(tmp_path: Path) -> None:
    (tmp_path / "capture").mkdir()
    lines = [{"event": "clienthello", "client": "10.77.0.10", "server": "198.51.100.39",
              "port": 443, "sni": "a.example", "passthrough": True, "time": 1.0},
             {"event": "tls_failed", "side": "client", "client": "10.77.0.10",
              "server": "198.51.100.39", "port": 443, "sni": "a.example",
              "error": "unknown ca", "time": 2.0},
             {"event": "pinned", "client": "10.77.0.10", "server": "198.51.100.39",
              "someday": [1], "time": 3.0}]  # an older (or newer) run: unknown keys kept
    (tmp_path / f.TLS).write_text("".join(json.dumps(x) + "\n" for x in lines))
    (hello, failed, pinned), skipped = store.read_tls(tmp_path)
    assert skipped == 0 and hello.passthrough is True and hello.side is None
    assert (failed.side, failed.error, failed.passthrough) == ("client", "unknown ca", None)
    assert pinned.details == {"someday": [1]} and pinned.port is None and pinned.sni is None
    assert [r.to_json() for r in (hello, failed)] == lines[:2]
    assert pinned.to_json() == lines[2] | {"port": None, "sni": None}
    (tmp_path / f.TLS).write_text('{"event": "tls_failed", "side": 1}\n')
    with pytest.raises(RunFileError, match="'side' should be a string"):
        store.read_tls(tmp_path)


def test_read_stats_counts_are_the_recorded_ones_in_order() -> None:
    stats = EndpointsFile.from_json({"stats": {"packets_read": 9, "frames_read": 10,
                                               "warnings": ["w"]}}).stats
    assert list(stats.counts.items()) == [("frames_read", 10), ("packets_read", 9)]
    assert EndpointsFile().stats.counts == {}
