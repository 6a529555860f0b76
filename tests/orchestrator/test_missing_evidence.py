"""The recorded seed run with one source of evidence gone (no packets at all, no flow file, no
TLS log, no events, a guest that was never ready): every claim that rests on it is
inconclusive, none fails and no negative claim passes; the claims it does not touch are judged
as on the intact run."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testbed.cli import main
from testbed.run import files as f
from tests.support import analysed_seed

NEGATIVE = {"never_reaches", "only_reaches", "does_not_pass_through", "not_delivered"}


def no_packets(run: Path) -> None:
    pcap = run / f.PCAP
    pcap.write_bytes(pcap.read_bytes()[:24])  # the file header: a capture of nothing


def never_ready(variant: str) -> Callable[[Path], None]:
    """``variant``'s guest never came up: its launch failed, it did nothing else."""
    def damage(run: Path) -> None:
        events = [json.loads(line) for line in (run / f.EVENTS).read_text().splitlines()]
        kept = []
        for e in events:
            if e["variant"] != variant:
                kept.append(e)
            elif e["action"] == "launch":
                kept.append(e | {"outcome": "failed", "error": "the agent did not answer"})
        (run / f.EVENTS).write_text("".join(json.dumps(e) + "\n" for e in kept))
    return damage


SITUATIONS: dict[str, Callable[[Path], object]] = {
    "no packets": no_packets,
    "no flow file": lambda run: (run / f.FLOWS).unlink(),
    "empty flow file": lambda run: (run / f.FLOWS).write_bytes(b""),
    "no TLS log": lambda run: (run / f.TLS).unlink(),
    "empty TLS log": lambda run: (run / f.TLS).write_bytes(b""),
    "no events": lambda run: (run / f.EVENTS).unlink(),
    "empty events": lambda run: (run / f.EVENTS).write_bytes(b""),
    "control never ready": never_ready("control"),
    "tom-zh never ready": never_ready("tom-zh"),
    "regular never ready": never_ready("regular"),
}
#: which verdicts a situation leaves without their evidence (None: all of them)
TOUCHED: dict[str, set[str] | None] = {
    "no packets": {"regular-never_reaches-country-CN", "control-never_reaches-country-CN",
                   "tom-en-reaches-country-CN", "tom-zh-reaches-country-CN",
                   "chat-with-tom-user-reaches-china",
                   "chat-with-regular-peer-stays-out-of-china",
                   "tom-user-never-sees-censored-word"},
    "no flow file": {"chat-with-regular-peer-stays-out-of-china"},
    "no TLS log": {"chat-with-regular-peer-stays-out-of-china"},
    "no events": None,
    "control never ready": {"control-never_reaches-country-CN",
                            "chat-with-regular-peer-stays-out-of-china",
                            "regular-peer-sees-censored-word"},
    "tom-zh never ready": {"tom-zh-reaches-country-CN", "chat-with-tom-user-reaches-china",
                           "tom-user-never-sees-censored-word"},
    "regular never ready": {"regular-never_reaches-country-CN",
                            "chat-with-tom-user-reaches-china",
                            "chat-with-regular-peer-stays-out-of-china",
                            "tom-user-never-sees-censored-word",
                            "regular-peer-sees-censored-word"},
}
TOUCHED |= {"empty flow file": TOUCHED["no flow file"], "empty TLS log": TOUCHED["no TLS log"],
            "empty events": TOUCHED["no events"]}


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return analysed_seed(tmp_path_factory)


@pytest.mark.parametrize("situation", SITUATIONS)
def test_a_claim_without_its_evidence_is_inconclusive(
        seed: Path, tmp_path: Path, situation: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    intact = {v["id"]: v for v in json.loads((seed / f.VERDICTS).read_text())["verdicts"]}
    run = tmp_path / "skype-2013-lab" / "seed-run"
    shutil.copytree(seed, run)
    SITUATIONS[situation](run)
    capsys.readouterr()
    assert main(["analyze", str(run)]) == 1
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    verdicts: dict[str, dict[str, Any]] = {
        v["id"]: v for v in json.loads((run / f.VERDICTS).read_text())["verdicts"]}
    touched = TOUCHED[situation]
    for vid, v in verdicts.items():
        assert v["status"] != "fail", (situation, vid, v["reason"])  # every claim is true
        if touched is None or vid in touched:
            if v["kind"] in NEGATIVE or not v["evidence"]:
                assert v["status"] == "inconclusive", (situation, vid, v["reason"])
        else:
            assert v["status"] == intact[vid]["status"], (situation, vid, v["reason"])


def test_no_packets_at_all_leaves_no_chat_claim_failed(
        seed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's case: a capture of nothing. Only what the receiver's screen showed still
    stands (the message was delivered); nothing rests on the absent traffic."""
    run = tmp_path / "skype-2013-lab" / "seed-run"
    shutil.copytree(seed, run)
    no_packets(run)
    (run / f.FLOWS).unlink()
    assert main(["analyze", str(run)]) == 1
    chats = {v["id"]: v["status"] for v in json.loads((run / f.VERDICTS).read_text())["verdicts"]
             if v["chat"]}
    assert chats == {"chat-with-tom-user-reaches-china": "inconclusive",
                     "chat-with-regular-peer-stays-out-of-china": "inconclusive",
                     "tom-user-never-sees-censored-word": "inconclusive",
                     "regular-peer-sees-censored-word": "pass"}
