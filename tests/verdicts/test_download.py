"""Download verdicts: redirected_to / not_redirected_to a host and served a sha256, judged on
the variant's own record of each download; inconclusive without a completed one."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.run import CaptureCounts, Event, Expectation
from testbed.run.downloads import downloads_of
from testbed.verdicts import FAIL, INCONCLUSIVE, PASS, RunFacts, Verdict, evaluate

URL = "http://www.skype.lab.example/SkypeSetup.exe"
TOM_URL = "http://skype.tom.lab.example/SkypeSetup.exe"
WWW_SHA, TOM_SHA = "a" * 64, "b" * 64


def detail(redirected: bool, url: str = URL) -> dict[str, Any]:
    final = TOM_URL if redirected else url
    chain = ([{"url": url, "status": 302, "location": TOM_URL}] if redirected else []) + \
        [{"url": final, "status": 200, "location": None}]
    return {"url": url, "chain": chain, "final_url": final,
            "final_host": final.split("/")[2], "status": 200, "size": 63,
            "sha256": TOM_SHA if redirected else WWW_SHA}


def event(*details: dict[str, Any], outcome: str = "ok", variant: str = "visitor",
          error: str | None = None) -> dict[str, Any]:
    return {"variant": variant, "action": "download", "start": 1.0, "end": 2.0,
            "outcome": outcome, "error": error,
            "steps": [{"step": f"download {d['url']}", "outcome": "ok", "start": 1.5,
                       "detail": d} for d in details]}


FAILED = {"url": URL, "chain": [], "error": f"{URL} could not be fetched: Name or service not "
          "known"}


def facts(*events: dict[str, Any]) -> RunFacts:
    return RunFacts(endpoints=(), places={}, geoip=(),
                    capture=CaptureCounts.from_json({"captured": 10, "complete": True}),
                    events=tuple(Event.from_json(e) for e in events))


def check(kind: str, place: dict[str, Any], f: RunFacts, url: str = URL) -> Verdict:
    return evaluate(Expectation.from_json({"id": "x", "variant": "visitor", "kind": kind,
                                           "place": place, "download": url}), f)


TOM_HOST, WWW_HOST = {"host": "*.tom.*"}, {"host": "www.skype.*"}
CASES = [  # (downloads, kind, place) -> status
    ([detail(True)], "redirected_to", TOM_HOST, PASS),
    ([detail(False)], "redirected_to", TOM_HOST, FAIL),
    ([detail(False)], "redirected_to", WWW_HOST, FAIL),  # served there, but not redirected
    ([detail(True)], "not_redirected_to", TOM_HOST, FAIL),
    ([detail(False)], "not_redirected_to", TOM_HOST, PASS),
    ([detail(True)], "not_redirected_to", WWW_HOST, PASS),
    ([detail(True), detail(False)], "redirected_to", TOM_HOST, FAIL),  # every one must
    ([detail(True), detail(False)], "not_redirected_to", TOM_HOST, FAIL),
    ([detail(True)], "served", {"sha256": TOM_SHA}, PASS),
    ([detail(True)], "served", {"sha256": WWW_SHA}, FAIL),
    ([detail(False)], "served", {"sha256": WWW_SHA.upper()}, PASS),
    ([FAILED, detail(False)], "served", {"sha256": WWW_SHA}, PASS),  # the completed one counts
]


@pytest.mark.parametrize(("downloads", "kind", "place", "status"), CASES)
def test_download_claims(downloads: list[dict[str, Any]], kind: str, place: dict[str, Any],
                         status: str) -> None:
    v = check(kind, place, facts(event(*downloads)))
    assert v.status == status, v.reason
    assert v.evidence and all(e["kind"] == "download" for e in v.evidence)
    assert v.reason.startswith(f"visitor's download of {URL}")


def test_failure_sentences_say_what_was_served_instead() -> None:
    v = check("redirected_to", TOM_HOST, facts(event(detail(False))))
    assert v.reason == (f"visitor's download of {URL} was not redirected to *.tom.*: "
                        f"{URL} was served by www.skype.lab.example (not redirected): 63 bytes, "
                        f"sha256 {WWW_SHA}")
    v = check("not_redirected_to", TOM_HOST, facts(event(detail(True))))
    assert v.reason == (f"visitor's download of {URL} was redirected to *.tom.*: {URL} was "
                        f"redirected to {TOM_URL} (302 from {URL}): 63 bytes, sha256 {TOM_SHA}")
    v = check("served", {"sha256": WWW_SHA}, facts(event(detail(True))))
    assert v.reason.startswith(f"visitor's download of {URL} was not served sha256 {WWW_SHA}: ")
    assert v.reason.endswith(f"sha256 {TOM_SHA}")


@pytest.mark.parametrize(("events", "why"), [
    ((), "visitor made no download of " + URL + " in this run"),
    ((event(detail(True, "http://other.lab.example/x")),), "made no download of " + URL),
    ((event(FAILED, outcome="failed", error="download failed"),),
     "the download of " + URL + " failed: " + FAILED["error"]),
    (({"variant": "visitor", "action": "download", "start": 1.0, "end": 2.0,
       "outcome": "failed", "error": "timed out: agent did not answer"},),
     "actions did not all succeed: download failed: timed out"),
])
@pytest.mark.parametrize("kind", ["redirected_to", "not_redirected_to", "served"])
def test_without_a_completed_download_nothing_is_decided(events: tuple[dict[str, Any], ...],
                                                         why: str, kind: str) -> None:
    place = {"sha256": WWW_SHA} if kind == "served" else TOM_HOST
    v = check(kind, place, facts(*events))
    assert v.status == INCONCLUSIVE
    assert why in v.reason, v.reason


def test_any_download_of_the_variant_without_a_url() -> None:
    v = check("redirected_to", TOM_HOST, facts(event(detail(True)),
                                               event(detail(False), variant="other")), url="")
    assert v.status == PASS and v.reason.startswith("visitor's downloads: ")


def test_a_damaged_download_record_names_the_event() -> None:
    e = Event.from_json(event({"chain": "not a list", "url": URL}))
    with pytest.raises(ValueError, match=r"visitor's download step 1: 'chain'"):
        downloads_of([e])
