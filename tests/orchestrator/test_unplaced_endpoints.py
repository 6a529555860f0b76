"""Endpoints nobody could place make negative geographic claims inconclusive, never a vacuous
pass: the seed run without its lab map (``lab/internet.yaml``), and with the map missing the
servers a variant contacted, k at a time."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from testbed.cli import main
from testbed.run import files as f
from tests.support import SEED_RUN, analysed_seed

SERVER = re.compile(r"^  - \{address: (\S+), .*country: (\w+), .*contacted_by: \[([^\]]*)\]")


def servers_of(variant: str) -> list[str]:
    """The lab addresses outside CN that ``variant`` contacts, in the map's order."""
    out = []
    for line in (SEED_RUN / f.INTERNET).read_text().splitlines():
        m = SERVER.match(line)
        if m and m.group(2) != "CN" and variant in m.group(3).split(", ") \
                and m.group(1).startswith("198.51.100."):  # a server, not the SSDP group
            out.append(m.group(1))
    return out


REGULAR = servers_of("regular")


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return analysed_seed(tmp_path_factory)


def judge(seed: Path, tmp: Path, capsys: pytest.CaptureFixture[str],
          drop: list[str] | None) -> tuple[str, dict[str, dict[str, str]]]:
    """Analyse a copy of the seed with the map missing (``drop`` None) or without ``drop``."""
    run = tmp / "skype-2013-lab" / "seed-run"
    shutil.copytree(seed, run)
    internet = run / f.INTERNET
    if drop is None:
        internet.unlink()
    else:
        gone = {f"{{address: {a}," for a in drop}
        internet.write_text("".join(line for line in internet.read_text().splitlines(True)
                                    if not any(g in line for g in gone)))
    capsys.readouterr()
    assert main(["analyze", str(run)]) == 1
    _, err = capsys.readouterr()
    verdicts = json.loads((run / f.VERDICTS).read_text())["verdicts"]
    return err, {v["id"]: v for v in verdicts}


def test_without_the_lab_map_nothing_negative_passes(seed: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    err, verdicts = judge(seed, tmp_path, capsys, None)
    assert err.count("lab/internet.yaml is missing") == 1
    for variant in ("regular", "control"):
        v = verdicts[f"{variant}-never_reaches-country-CN"]
        assert v["status"] == "inconclusive", v["reason"]
        assert re.match(r"1\d endpoints could not be placed: 198\.51\.100\.\d+ \(documentation\)",
                        v["reason"]), v["reason"]
        assert "countries: none" not in v["reason"]
    for vid in ("tom-en-reaches-country-CN", "chat-with-tom-user-reaches-china",
                "chat-with-regular-peer-stays-out-of-china"):  # no evidence, either way
        assert verdicts[vid]["status"] == "inconclusive", verdicts[vid]["reason"]
        assert "could not be placed" in verdicts[vid]["reason"]


KS = sorted({1, 2, 3, 5, len(REGULAR) // 2, len(REGULAR)})


@pytest.mark.parametrize("k", KS)
def test_servers_missing_from_the_map_cannot_be_ruled_out(
        seed: Path, tmp_path: Path, k: int, capsys: pytest.CaptureFixture[str]) -> None:
    dropped = REGULAR[:k]
    contacted = {e["address"] for e in json.loads((seed / f.ENDPOINTS).read_text())["endpoints"]
                 if e["variant"] == "regular"}
    lost = sorted(set(dropped) & contacted)  # the map's servers regular did contact
    _, verdicts = judge(seed, tmp_path, capsys, dropped)
    v = verdicts["regular-never_reaches-country-CN"]
    assert v["status"] == "inconclusive", v["reason"]
    assert v["reason"].startswith(f"{len(lost)} endpoints could not be placed: "), v["reason"]
    named = re.findall(r"(198\.51\.100\.\d+) \(documentation\)", v["reason"])
    assert named and set(named) <= set(lost) and len(named) == min(len(lost), 5)
    # the claims the dropped servers do not touch are judged as before
    assert verdicts["tom-zh-reaches-country-CN"]["status"] == "pass"
    assert verdicts["regular-peer-sees-censored-word"]["status"] == "pass"
