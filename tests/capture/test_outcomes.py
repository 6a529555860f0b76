"""The TLS decision table (``testbed.capture.outcomes``) over generated event sequences: every
case of interception x retry x "our CA accepted for another host" x scenario rule, in the
current log format and an older run's, in any line order."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from testbed.capture.outcomes import (
    BROKEN,
    INTERCEPTED,
    PASSTHROUGH,
    PINNED,
    UNCLASSIFIED,
    UNTRUSTED,
    classify,
)
from testbed.run import TlsRecord, store

from .tls_events import INTERCEPTION, RETRY, pair

SEED_RUN = Path(__file__).resolve().parents[1] / "data" / "seed-run"
APP, OTHER_APP = "10.77.0.20", "10.77.0.21"


def table(interception: str, retry: str, elsewhere: bool, rule: bool) -> str:
    """The module docstring's table, written out again independently."""
    if rule:
        return PASSTHROUGH
    if interception == "established":
        return INTERCEPTED
    if interception == "none":
        return UNCLASSIFIED  # never tried under interception
    if retry == "failed":
        return BROKEN
    if retry == "ok" and interception == "client refused":
        return PINNED if elsewhere else UNTRUSTED
    return UNCLASSIFIED


CASES = [c for c in itertools.product(INTERCEPTION, RETRY, (True, False), (False, True),
                                      (True, False))
         if not (c[0] == "none" and c[1] == "none")  # nothing at all happened
         and not (c[4] is False and c[1] in ("ok", "failed", "unknown"))]  # older runs: no ends


def _records(lines: list[dict], seed: int) -> list[TlsRecord]:
    random.Random(seed).shuffle(lines)
    return [TlsRecord.from_json(json.loads(json.dumps(x))) for x in lines]


@pytest.mark.parametrize("interception,retry,elsewhere,rule,ids", CASES,
                         ids=["-".join(map(str, c)).replace(" ", "_") for c in CASES])
def test_each_case_of_the_table(interception, retry, elsewhere, rule, ids):
    lines = pair(APP, "app.example", 10.0, interception, retry, rule=rule, ids=ids)
    if elsewhere:  # the same client accepted the gateway's CA for another host
        lines += pair(APP, "other.example", 5.0, "established", "none", ids=ids)
    # another client accepting the CA for this very host says nothing about this client
    lines += pair(OTHER_APP, "app.example", 1.0, "established", "none", ids=ids)
    got = {(o.client, o.host): o for o in classify(_records(lines, len(lines)))}
    want = table(interception, retry, elsewhere, rule)
    mine = got[(APP, "app.example")]
    assert mine.outcome == want, f"expected {want}, got {mine.outcome}: {mine.reason}"
    assert mine.reason, "an outcome without a reason"
    assert got[(OTHER_APP, "app.example")].outcome == INTERCEPTED
    if elsewhere:
        assert got[(APP, "other.example")].outcome == INTERCEPTED


@pytest.mark.parametrize("hosts", [1, 2, 5])
@pytest.mark.parametrize("retry", ["ok", "failed", "unknown", "none"])
def test_a_client_that_accepts_our_ca_nowhere_is_never_pinned(hosts, retry):
    lines = [x for h in range(hosts)
             for x in pair(APP, f"h{h}.example", 10.0 * h, "client refused", retry)]
    lines += pair(OTHER_APP, "h0.example", 0.5, "established", "none")  # another client does
    outcomes = [o.outcome for o in classify(_records(lines, hosts)) if o.client == APP]
    assert len(outcomes) == hosts and PINNED not in outcomes
    assert set(outcomes) == {table("client refused", retry, False, False)}


def test_outcome_lines_are_not_read_as_events():
    lines = pair(APP, "app.example", 1.0, "established", "none")
    lines.append({"event": "outcome", "client": APP, "server": "203.0.113.9", "port": 443,
                  "sni": "app.example", "outcome": "pinned", "reason": "made up", "time": 9.0})
    (o,) = classify(_records(lines, 1))
    assert o.outcome == INTERCEPTED


def test_a_refusal_without_its_clienthello_still_counts():
    lines = [{"event": "tls_failed", "side": "client", "client": APP, "server": "203.0.113.9",
              "port": 443, "sni": "app.example", "error": "unknown ca", "time": 3.0}]
    (o,) = classify(_records(lines, 1))
    assert o.outcome == UNCLASSIFIED and o.times == (3.0,)


def test_the_seed_runs_older_pinned_reads_as_a_refusal_it_cannot_classify():
    """The seed run's addon wrote ``pinned`` at the first refusal and passed the host through
    for every client afterwards: nothing in it says pinned rather than untrusted or broken."""
    records, _ = store.read_tls(SEED_RUN)
    got = classify(records)
    assert PINNED not in {o.outcome for o in got}
    odd = {(o.client, o.host): o.outcome for o in got if o.outcome != INTERCEPTED}
    assert odd == {("10.77.0.10", "srv-64-4-21-39.us.lab.example"): UNCLASSIFIED,
                   ("10.77.0.13", "srv-64-4-21-39.us.lab.example"): UNCLASSIFIED}
    assert sum(o.outcome == INTERCEPTED for o in got) == 57
