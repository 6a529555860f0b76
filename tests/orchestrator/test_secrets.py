"""A password reaches the agent that types it and nothing else: not events.jsonl, the manifest,
logs, analysis, verdicts, junit or the report, nor what the run prints. On the in-tree fakes,
for runs that pass and runs whose steps fail."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from testbed.orchestrator.run import run_scenario
from testbed.provider.fakes import FakeAgent, action_of, done, failed
from testbed.scenario import load_scenario
from tests.orchestrator.test_run_fakes import FAST, SEED, Roles

VARIANTS = {"regular": "TESTBED_PASSWORD_REGULAR", "tom-en": "TESTBED_PASSWORD_TOM_EN",
            "tom-zh": "TESTBED_PASSWORD_TOM_ZH", "control": "TESTBED_PASSWORD_CONTROL"}


def _fail_at(action: str) -> Any:
    def handler(steps: list[dict[str, Any]]) -> dict[str, Any]:
        if action_of(steps) == action:
            return failed(steps, f"image not found during {action}")
        return done(steps)
    return handler


OUTCOMES = {
    "every step done": None,
    "login fails": "login",
    "launch fails": "launch",
    "a chat fails": "chat_send",
}


@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
def test_passwords_appear_in_no_file_of_the_run(outcome: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    words = {v: f"pw-{v}-{secrets.token_hex(8)}" for v in VARIANTS}
    for variant, env in VARIANTS.items():
        monkeypatch.setenv(env, words[variant])
    fail = OUTCOMES[outcome]
    agents = {v: FakeAgent(v, _fail_at(fail) if fail else done) for v in VARIANTS}
    printed: list[str] = []
    out = run_scenario(load_scenario(SEED), tmp_path / "results", progress=printed.append,
                       state_dir=tmp_path / "ca", kind=Roles(agents).kind(), timeouts=FAST)
    assert out.status in ("complete", "failed")

    # not vacuous: each password did reach its agent, in a secret `type` step
    for variant, word in words.items():
        typed = [s for call in agents[variant].calls for s in call if s.get("type") == word]
        if fail in ("launch",):
            assert not typed  # later actions were skipped
        else:
            assert typed and all(s.get("secret") is True for s in typed), variant

    files = [f for f in out.run.path.rglob("*") if f.is_file()]
    names = {f.name for f in files}
    assert {"events.jsonl", "manifest.json", "report.html", "verdicts.json"} <= names
    for f in files:
        data = f.read_bytes()
        for word in words.values():
            assert word.encode() not in data, f"a password is in {f.relative_to(out.run.path)}"
    text = "\n".join(printed)
    assert not any(word in text for word in words.values()), "a password was printed"


def test_the_check_sees_a_leak_when_there_is_one(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An agent that reports its steps verbatim (ignoring ``secret``) leaks the password into
    events.jsonl: the check above would catch it."""
    word = f"pw-{secrets.token_hex(8)}"
    monkeypatch.setenv("TESTBED_PASSWORD_REGULAR", word)

    def verbatim(steps: list[dict[str, Any]]) -> dict[str, Any]:
        answer = done(steps)
        answer["results"] = [{"step": str(s), "outcome": "done"} for s in steps]
        return answer

    agents = {"regular": FakeAgent("regular", verbatim)}
    out = run_scenario(load_scenario(SEED), tmp_path / "results", progress=lambda m: None,
                       state_dir=tmp_path / "ca", kind=Roles(agents).kind(), timeouts=FAST)
    assert word in (out.run.path / "events.jsonl").read_text()
