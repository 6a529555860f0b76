"""`validate` checks what `run` will need: placeholders known and plain, reference images
present, ``{password}`` only where it is typed as a secret. Each refused case is also refused
by `run` (on the fakes) before anything starts; each accepted one runs without a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.scenario.conftest import assert_refused, change, run, validate

SCENARIO = "skype-2013-lab.yaml"
APP = "apps/refclient.yaml"


def _chat_text(text: str) -> Any:
    return lambda d: d["sessions"][5]["steps"][0].update(text=text)


# a chat text (a scenario step's field): only {canary}, plain
BAD_TEXTS = {
    "hello {user}": "unknown placeholder {user}",
    "{password}": "unknown placeholder {password}",
    "{canary:d}": "format specs are not allowed",
    "{canary:>999999999}": "format specs are not allowed",
    "{canary!r}": "conversions are not allowed",
    "{canary!s:10}": "conversions are not allowed",
    "{0}": "not a plain lower-case name",
    "{}": "not a plain lower-case name",
    "{canary.upper}": "not a plain lower-case name",
    "{canary[0]}": "not a plain lower-case name",
    "{Canary}": "not a plain lower-case name",
    "{canary": "expected '}'",
    "canary}": "Single '}'",
    "{to_user}": "unknown placeholder {to_user}",
    "{canary:{canary}}": "format specs are not allowed",
}
GOOD_TEXTS = ["plain text", "{canary}", "六四 {canary}", "{{literal}} braces {canary}", ""]

# a step of an app profile: where {password} may not go, and bad placeholders
BAD_PROFILE = {
    "password in launch": (lambda d: d["launch"].append("{password}"),
                           "launch[5]", "unknown placeholder {password}"),
    "password in run": (lambda d: d["actions"]["about"].append({"run": ["x", "{password}"]}),
                        "actions.about[4].run", "only be typed"),
    "password in press": (lambda d: d["actions"]["about"].append({"press": "{password}"}),
                          "actions.about[4].press", "only be typed"),
    "password in hotkey": (lambda d: d["actions"]["about"].append(
        {"hotkey": ["ctrl", "{password}"]}), "actions.about[4].hotkey", "only be typed"),
    "password typed without secret": (lambda d: d["actions"]["login"][3].pop("secret") and None,
                                      "actions.login[3].type", "secret: true"),
    "password typed with secret false": (
        lambda d: d["actions"]["login"][3].update(secret=False), "actions.login[3].type",
        "secret: true"),
    "password inside other typed text": (
        lambda d: d["actions"]["login"][1].update(type="{user}/{password}"),
        "actions.login[1].type", "secret: true"),
    "format spec in an action": (lambda d: d["actions"]["login"][1].update(type="{user:>99}"),
                                 "actions.login[1].type", "format specs"),
    "conversion in launch": (lambda d: d["launch"].append("{build!r}"), "launch[5]",
                             "conversions"),
    "positional in an action": (lambda d: d["actions"]["login"][1].update(type="{0}"),
                                "actions.login[1].type", "plain lower-case"),
    "placeholder in an image name": (
        lambda d: d["actions"]["about"][0].update(click_image="{user}.png"),
        "actions.about[0].click_image", "without placeholders"),
    "missing reference image": (
        lambda d: d["actions"]["about"][0].update(click_image="no-such.png"),
        "actions.about[0].click_image", "not found"),
    "missing image in a wait": (
        lambda d: d["actions"]["about"][1].update(wait_image="gone.png"),
        "actions.about[1].wait_image", "not found"),
    "missing image in a watch": (
        lambda d: d["actions"]["chat_absent"][0].update(absent_image="gone.png"),
        "actions.chat_absent[0].absent_image", "not found"),
    "images folder missing": (lambda d: d.update(images="nowhere"), "_image",
                              "not found"),
    "timeout of a year": (lambda d: d["actions"]["about"][1].update(timeout=3e7),
                          "actions.about[1].timeout", "<= 3600"),
    "sleep forever": (lambda d: d["actions"]["about"].append({"sleep": 1e300}),
                      "actions.about[4].sleep", "<= 3600"),
    "offset off any screen": (lambda d: d["actions"]["login"][0].update(offset=[10**12, 0]),
                              "offset", "<= 10000"),
}


@pytest.mark.parametrize("text", sorted(BAD_TEXTS))
def test_a_chat_text_with_a_placeholder_run_cannot_fill_is_refused(
        text: str, seed_tree: Path, tmp_path: Path) -> None:
    change(seed_tree / SCENARIO, _chat_text(text))
    for outcome in (validate(seed_tree / SCENARIO), run(seed_tree / SCENARIO, tmp_path / "r")):
        assert_refused(outcome, "skype-2013-lab.yaml:", "sessions[5].steps[0].text",
                       BAD_TEXTS[text])
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("text", GOOD_TEXTS)
def test_a_plain_chat_text_validates_and_runs(text: str, seed_tree: Path,
                                              tmp_path: Path) -> None:
    change(seed_tree / SCENARIO, _chat_text(text))
    assert validate(seed_tree / SCENARIO).verdict == "ok"
    outcome = run(seed_tree / SCENARIO, tmp_path / "r")
    assert outcome.verdict == "ok" and outcome.code in (0, 1), outcome


@pytest.mark.parametrize("name", sorted(BAD_PROFILE))
def test_an_app_profile_step_run_cannot_do_is_refused(name: str, seed_tree: Path,
                                                       tmp_path: Path) -> None:
    edit, key, words = BAD_PROFILE[name]
    change(seed_tree / APP, edit)
    for outcome in (validate(seed_tree / SCENARIO), run(seed_tree / SCENARIO, tmp_path / "r")):
        assert_refused(outcome, "refclient.yaml:", key, words)
    assert not (tmp_path / "r").exists()


def test_missing_images_are_left_to_the_preflight_for_real_vms(seed_tree: Path) -> None:
    """The real study ships no Skype screenshots (they are taken on the user's guests): its
    pre-flight lists them and `run` stops before anything starts (tests/vagrant)."""
    assert not (seed_tree / "apps" / "skype-classic" / "signin-button.png").exists()
    assert validate(seed_tree / "skype-2013.yaml").verdict == "ok"


def test_every_placeholder_the_seed_uses_is_filled_by_the_driver(seed_tree: Path) -> None:
    """What validate accepts, the driver can fill: every action of every shipped profile,
    resolved for a step giving the fields the scenario gives."""
    from testbed.orchestrator.drive import Driver
    from testbed.provider.abstracts import GuestHandle
    from testbed.provider.fakes import FakeAgent
    from testbed.scenario import load_scenario

    scenario = load_scenario(seed_tree / SCENARIO)
    guests = {v: GuestHandle(variant=v, address="10.0.0.2", agent=FakeAgent(v),
                          workdir=seed_tree)
              for v in scenario.clients}
    driver = Driver(scenario, guests, run=None, canary="CANARY-x",  # type: ignore[arg-type]
                    progress=lambda m: None)
    resolved = 0
    for session in scenario.sessions:
        for step in session.steps:
            steps, images = driver.resolve(step)
            assert all(p.is_file() for p in images.values())
            assert not any("{" in str(s.get("type", "")) for s in steps)
            resolved += 1
    assert resolved == 29


@pytest.mark.parametrize("kind", ["fifo", "folder", "huge"])
def test_a_reference_image_run_cannot_read_is_refused(kind: str, seed_tree: Path,
                                                       tmp_path: Path) -> None:
    import os

    image = seed_tree / "apps" / "refclient" / "about-button.png"
    image.unlink()
    if kind == "fifo":
        os.mkfifo(image)
    elif kind == "folder":
        image.mkdir()
    else:
        with image.open("wb") as f:
            f.truncate((16 << 20) + 1)
    words = "bytes; images over" if kind == "huge" else "not a regular file"
    for outcome in (validate(seed_tree / SCENARIO), run(seed_tree / SCENARIO, tmp_path / "r")):
        assert_refused(outcome, "refclient.yaml:", "about-button.png", words)
