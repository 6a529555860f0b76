"""Call claims in a scenario (`call: {from, to}` with `media_passes_through` /
`media_does_not_pass_through`): the Mumble scenario validates and loads them; mistakes are
refused with their line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from testbed.run import Expectation as ManifestExpectation
from testbed.scenario import check_files, load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
FILE = "mumble-call-lab.yaml"
CLAIM = """  - id: call-on-china-server-goes-through-china
    call: {from: cn-a, to: cn-b}
    media_passes_through: {country: CN}
"""


def test_the_mumble_scenario_validates_and_carries_its_call_claims() -> None:
    assert check_files([str(SCENARIOS / FILE)]) == []
    s = load_scenario(SCENARIOS / FILE)
    media = [e for e in s.expectations if e.kind.startswith("media_")]
    assert [(e.id, e.kind, e.variant, e.call, e.place) for e in media] == [
        ("call-on-china-server-goes-through-china", "media_passes_through", "cn-a",
         {"from": "cn-a", "to": "cn-b"}, {"country": "CN"}),
        ("call-on-german-server-stays-out-of-china", "media_does_not_pass_through", "de-a",
         {"from": "de-a", "to": "de-b"}, {"country": "CN"}),
        ("call-on-german-server-goes-through-germany", "media_passes_through", "de-a",
         {"from": "de-a", "to": "de-b"}, {"country": "DE"})]
    # the manifest's form keeps the parties
    back = ManifestExpectation.from_json(media[0].to_json())
    assert back.call is not None and (back.call.sender, back.call.recipient) == ("cn-a", "cn-b")


@pytest.mark.parametrize(("new", "said"), [
    ("    call: {from: cn-a, to: ghost}\n    media_passes_through: {country: CN}\n",
     "expectations[0].call.to: unknown variant 'ghost'"),
    ("    media_passes_through: {country: CN}\n", "expectations[0]: missing required key 'call'"),
    ("    call: {from: cn-a}\n    media_passes_through: {country: CN}\n",
     "expectations[0].call: missing required key 'to'"),
    ("    call: {from: cn-a, to: cn-b}\n    media_passes_through: {country: China}\n",
     "media_passes_through.country"),
])
def test_a_bad_call_claim_is_refused_with_its_line(tmp_path: Path, new: str, said: str) -> None:
    shutil.copytree(SCENARIOS, tmp_path / "scenarios")
    f = tmp_path / "scenarios" / FILE
    text = f.read_text()
    head = "  - id: call-on-china-server-goes-through-china\n"
    assert text.count(CLAIM) == 1
    f.write_text(text.replace(CLAIM, head + new))
    problems = [str(p) for p in check_files([str(f)])]
    assert any(said in p and f"{FILE}:" in p for p in problems), problems
