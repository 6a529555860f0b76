"""A capture that ends early is incomplete from the point of damage on: the recorded seed
run's pcap (or its flow file) cut at many points, mid-record and between records.

Negative claims whose time reaches past the damage become inconclusive, naming the file and
the time after which nothing was read; positive claims proven by evidence before the damage
still pass; the damage is reported once.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testbed.cli import main
from testbed.run import files as f
from tests.support import SEED_RUN, analysed_seed

FRACTIONS = (0.02, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.97)
NOTHING_AFTER = re.compile(r"nothing after (\d\d:\d\d:\d\d) UTC was read")


def records(pcap: bytes) -> list[tuple[int, int, float]]:
    """(offset, end, timestamp) of every record of a classic little-endian pcap."""
    out, pos = [], 24
    while pos + 16 <= len(pcap):
        sec, usec, incl, _ = struct.unpack_from("<IIII", pcap, pos)
        out.append((pos, pos + 16 + incl, sec + usec / 1e6))
        pos += 16 + incl
    return out


@dataclass(frozen=True)
class Judged:
    code: int
    err: str
    verdicts: dict[str, dict[str, Any]]


def judge(run: Path, capsys: pytest.CaptureFixture[str]) -> Judged:
    capsys.readouterr()
    code = main(["analyze", str(run)])
    _, err = capsys.readouterr()
    path = run / f.VERDICTS
    verdicts = json.loads(path.read_text())["verdicts"] if path.exists() else []
    return Judged(code, err, {v["id"]: v for v in verdicts})


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return analysed_seed(tmp_path_factory)


@pytest.fixture(scope="module")
def intact(seed: Path) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in json.loads((seed / f.VERDICTS).read_text())["verdicts"]}


def window_end(seed: Path, verdict: dict[str, Any]) -> float:
    """When a chat claim's evidence window closes: the next canary message of either party
    (the canary is one string per run), else never."""
    events = [json.loads(line) for line in (seed / f.EVENTS).read_text().splitlines()]
    canary = json.loads((seed / f.MANIFEST).read_text())["canary"]
    chat = verdict["chat"]
    sends = [e for e in events if e["action"] == "chat_send" and e["outcome"] == "ok"]
    mine = [e["start"] for e in sends if e["variant"] == chat["from"]
            and e["params"]["to"] == chat["to"] and chat["text_contains"] in e["params"]["text"]]
    parties = {chat["from"], chat["to"]}
    later = [e["start"] for e in sends if canary in e["params"]["text"]
             and parties & {e["variant"], e["params"]["to"]} and e["start"] > max(mine)]
    return min(later, default=float("inf"))


def damage_time(reason: str, day: float) -> float:
    """The epoch time of "nothing after HH:MM:SS UTC" in ``reason`` (on the run's day)."""
    found = NOTHING_AFTER.search(reason)
    assert found, reason
    midnight = datetime.datetime.fromtimestamp(day, datetime.UTC).replace(
        hour=0, minute=0, second=0, microsecond=0)
    h, m, s = map(int, found.group(1).split(":"))
    return (midnight + datetime.timedelta(hours=h, minutes=m, seconds=s)).timestamp()


def cuts(pcap: bytes) -> list[tuple[str, int]]:
    recs = records(pcap)
    out = []
    for fr in FRACTIONS:
        at = int(len(pcap) * fr)
        out.append((f"mid-record-{fr}", at))
        boundary = next(r[0] for r in recs if r[0] >= at)  # the file just ends between records
        out.append((f"between-records-{fr}", boundary))
    return out


PCAP_CUTS = cuts((SEED_RUN / f.PCAP).read_bytes())


@pytest.mark.parametrize(("label", "at"), PCAP_CUTS, ids=[c[0] for c in PCAP_CUTS])
def test_a_cut_pcap_makes_later_negative_claims_inconclusive(
        seed: Path, intact: dict[str, dict[str, Any]], tmp_path: Path, label: str, at: int,
        capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "skype-2013-lab" / "seed-run"
    shutil.copytree(seed, run)
    data = (run / f.PCAP).read_bytes()
    (run / f.PCAP).write_bytes(data[:at])
    last_read = max((t for _, end, t in records(data[:at]) if end <= at), default=None)
    got = judge(run, capsys)
    assert "Traceback" not in got.err
    assert got.code == 1, got.err  # something is inconclusive now
    mentions = [line for line in got.err.splitlines() if "gateway.pcap" in line]
    assert len(mentions) == 1, got.err  # the damage is reported once

    for vid, v in got.verdicts.items():
        before = intact[vid]
        kind = v["kind"]
        if kind in ("never_reaches", "only_reaches"):
            assert v["status"] == "inconclusive", (label, vid, v["reason"])
            assert "capture/gateway.pcap" in v["reason"]
        if "nothing after" in v["reason"] and last_read is not None:
            when = damage_time(v["reason"], last_read)
            assert last_read - 5 <= when <= last_read, (label, v["reason"])
        if kind == "does_not_pass_through":
            if v["status"] == "pass":  # only when the damage falls after its window
                assert "gateway.pcap" not in v["reason"]
                assert last_read is not None and last_read >= window_end(seed, v)
            else:
                assert v["status"] == "inconclusive", (label, vid, v["reason"])
        if kind == "reaches":  # proven by flows before the damage: still a pass
            proven = [e for e in before["evidence"]
                      if last_read is not None and e["first_seen"] <= last_read]
            assert v["status"] == ("pass" if proven else "inconclusive"), (label, vid, v)
        if kind == "passes_through":  # the flow file, intact, holds the canary on that path
            assert v["status"] == "pass", (label, vid, v["reason"])
        if kind == "delivered":  # judged from the receiver's screen, not from the capture
            assert v["status"] == "pass", (label, vid, v["reason"])
        assert v["status"] != "fail", (label, vid, v["reason"])


FLOW_CUTS = [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95]


@pytest.mark.parametrize("fraction", FLOW_CUTS)
def test_a_cut_flow_file_makes_later_chat_absence_inconclusive(
        seed: Path, intact: dict[str, dict[str, Any]], tmp_path: Path, fraction: float,
        capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "skype-2013-lab" / "seed-run"
    shutil.copytree(seed, run)
    data = (run / f.FLOWS).read_bytes()
    (run / f.FLOWS).write_bytes(data[: int(len(data) * fraction)])
    got = judge(run, capsys)
    assert "Traceback" not in got.err
    if got.code == 2:  # damaged before its first flow: refused in one line, nothing left
        assert len(got.err.strip().splitlines()) == 1 and "flows.mitm" in got.err
        assert not got.verdicts and not (run / f.REPORT).exists()
        return
    assert len([line for line in got.err.splitlines() if "flows.mitm" in line]) == 1
    for vid, v in got.verdicts.items():
        if v["kind"] in ("reaches", "never_reaches", "delivered", "not_delivered"):
            assert v["status"] == intact[vid]["status"], (fraction, vid, v["reason"])
        if v["kind"] == "does_not_pass_through":
            if v["status"] == "pass":
                assert "flows.mitm" not in v["reason"]
            else:
                assert v["status"] == "inconclusive" and "capture/flows.mitm is damaged" in \
                    v["reason"], (fraction, v["reason"])
        assert v["status"] != "fail", (fraction, vid, v["reason"])
