"""What a scenario and an app profile say about trust, profiles and the launch command, as
`validate` and `run` see them: ``launch`` may use the launching step's fields (``{url}``) but
never ``{password}``; a starting profile is a folder inside the scenario's tree; an app that
brings its own trust store is passed through or expected ``untrusted``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.scenario.conftest import assert_refused, change, run, validate

SCENARIO = "skype-2013-lab.yaml"
APP = "apps/refclient.yaml"  # used by regular, tom-en and control


def _launch_url(d: Any) -> None:
    d["launch"] += ["--open", "{url}"]


def _launch_steps(url: str | None) -> Any:
    def edit(d: Any) -> None:
        for step in d["sessions"][0]["steps"]:
            if url is not None:
                step["url"] = url
    return edit


# -- launch and the step's fields --------------------------------------------------------------
def test_a_launch_needing_url_is_refused_for_a_step_without_one(seed_tree: Path,
                                                                 tmp_path: Path) -> None:
    change(seed_tree / APP, _launch_url)
    for outcome in (validate(seed_tree / SCENARIO), run(seed_tree / SCENARIO, tmp_path / "r")):
        assert_refused(outcome, "sessions[0].steps[0].action", "needs {url}",
                       "in its launch command")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("url", ["https://www.example.cn/", "https://x.example/?c={canary}"])
def test_a_launch_with_url_validates_runs_and_is_filled(url: str, seed_tree: Path,
                                                        tmp_path: Path) -> None:
    from testbed.orchestrator.drive import Driver
    from testbed.provider.abstracts import GuestHandle
    from testbed.provider.fakes import FakeAgent
    from testbed.scenario import load_scenario

    change(seed_tree / APP, _launch_url)
    change(seed_tree / SCENARIO, _launch_steps(url))
    assert validate(seed_tree / SCENARIO).verdict == "ok"
    outcome = run(seed_tree / SCENARIO, tmp_path / "r")
    assert outcome.verdict == "ok" and outcome.code in (0, 1), outcome
    scenario = load_scenario(seed_tree / SCENARIO)
    guests = {v: GuestHandle(variant=v, address="10.0.0.2", agent=FakeAgent(v),
                             workdir=seed_tree) for v in scenario.clients}
    driver = Driver(scenario, guests, run=None, canary="CANARY-x",  # type: ignore[arg-type]
                    progress=lambda m: None)
    steps, _ = driver.resolve(scenario.sessions[0].steps[0])
    argv = next(s["run"] for s in steps if "run" in s)
    assert argv[-2:] == ["--open", url.replace("{canary}", "CANARY-x")]


@pytest.mark.parametrize("text, words", [
    ("{password}", "unknown placeholder {password} in the launch command"),
    ("--pw={password}", "{password} is typed only"),
    ("{url!r}", "conversions are not allowed"),
    ("{url:>9}", "format specs are not allowed"),
    ("{Url}", "not a plain lower-case name"),
])
def test_a_launch_placeholder_run_must_not_fill_is_refused(text: str, words: str,
                                                            seed_tree: Path) -> None:
    change(seed_tree / APP, lambda d: d["launch"].append(text))
    assert_refused(validate(seed_tree / SCENARIO), "refclient.yaml:", "launch[5]", words)


# -- a starting profile ------------------------------------------------------------------------
def _profile(value: str) -> Any:
    return lambda d: d["clients"]["regular"].update(profile=value)


def test_a_starting_profile_inside_the_scenario_validates_and_runs(seed_tree: Path,
                                                                   tmp_path: Path) -> None:
    (seed_tree / "profiles" / "signed-in" / ".config").mkdir(parents=True)
    (seed_tree / "profiles" / "signed-in" / ".config" / "app.ini").write_text("user=alice\n")
    change(seed_tree / SCENARIO, _profile("profiles/signed-in"))
    assert validate(seed_tree / SCENARIO).verdict == "ok"
    outcome = run(seed_tree / SCENARIO, tmp_path / "r")
    assert outcome.verdict == "ok" and outcome.code in (0, 1), outcome
    from testbed.scenario import load_scenario
    client = load_scenario(seed_tree / SCENARIO).clients["regular"]
    assert client.profile == (seed_tree / "profiles" / "signed-in").resolve()


@pytest.mark.parametrize("value, words", [
    ("../../etc", "is outside the scenario's folder"),
    ("/etc", "is outside the scenario's folder"),
    ("profiles/none", "profile folder not found"),
    ("apps/refclient.yaml", "is not a folder"),
    ("", "expected a non-empty string"),
])
def test_a_starting_profile_that_is_no_folder_of_the_scenario_is_refused(
        value: str, words: str, seed_tree: Path, tmp_path: Path) -> None:
    change(seed_tree / SCENARIO, _profile(value))
    for outcome in (validate(seed_tree / SCENARIO), run(seed_tree / SCENARIO, tmp_path / "r")):
        assert_refused(outcome, "skype-2013-lab.yaml:", "clients.regular.profile", words)
    assert not (tmp_path / "r").exists()


def test_a_starting_profile_on_vms_is_refused_not_ignored(seed_tree: Path) -> None:
    (seed_tree / "profiles" / "p").mkdir(parents=True)
    change(seed_tree / "vagrant-linux-lab.yaml",
           lambda d: next(iter(d["clients"].values())).update(profile="profiles/p"))
    assert_refused(validate(seed_tree / "vagrant-linux-lab.yaml"), ".profile",
                   "lab guests only")


def test_a_starting_profile_linked_out_of_the_tree_is_refused(seed_tree: Path) -> None:
    (seed_tree / "profiles").mkdir(exist_ok=True)  # the shipped tree may have profiles
    (seed_tree / "profiles" / "sneaky").symlink_to("/root")
    change(seed_tree / SCENARIO, _profile("profiles/sneaky"))
    assert_refused(validate(seed_tree / SCENARIO), "clients.regular.profile", "outside")


# -- trust stores ------------------------------------------------------------------------------
@pytest.mark.parametrize("store", ["system", "nss", "java"])
def test_an_app_reading_a_store_we_fill_needs_nothing_more(store: str, seed_tree: Path) -> None:
    change(seed_tree / APP, lambda d: d.update(trust=store))
    assert validate(seed_tree / SCENARIO).verdict == "ok"
    from testbed.scenario import load_scenario
    assert load_scenario(seed_tree / SCENARIO).clients["regular"].app.trust == store


@pytest.mark.parametrize("store", ["keychain", "", "NSS"])
def test_an_unknown_trust_store_is_refused(store: str, seed_tree: Path) -> None:
    change(seed_tree / APP, lambda d: d.update(trust=store))
    assert_refused(validate(seed_tree / SCENARIO), "refclient.yaml:", "trust", "system")


def test_an_app_with_its_own_store_unhandled_is_refused(seed_tree: Path, tmp_path: Path) -> None:
    change(seed_tree / APP, lambda d: d.update(trust="own"))
    for outcome in (validate(seed_tree / SCENARIO), run(seed_tree / SCENARIO, tmp_path / "r")):
        assert_refused(outcome, "clients.regular.app", "brings its own trust store",
                       "tls: passthrough", "untrusted")
    assert not (tmp_path / "r").exists()


def _handled(how: str) -> Any:
    def edit(d: Any) -> None:
        for variant in ("regular", "tom-en", "control", "cn-visitor"):
            if how == "passthrough":
                d["clients"][variant]["tls"] = "passthrough"
            else:
                d.setdefault("expectations", []).append(
                    {"variant": variant, "reaches": {"country": "US"}, "tls": "untrusted",
                     "id": f"{variant}-untrusted"})
    return edit


@pytest.mark.parametrize("how", ["passthrough", "untrusted"])
def test_an_app_with_its_own_store_passed_through_or_expected_untrusted_validates(
        how: str, seed_tree: Path) -> None:
    change(seed_tree / APP, lambda d: d.update(trust="own"))
    change(seed_tree / SCENARIO, _handled(how))
    assert validate(seed_tree / SCENARIO).verdict == "ok"


def test_one_variant_handled_is_not_enough(seed_tree: Path) -> None:
    change(seed_tree / APP, lambda d: d.update(trust="own"))
    change(seed_tree / SCENARIO, lambda d: d["clients"]["regular"].update(tls="passthrough"))
    assert_refused(validate(seed_tree / SCENARIO), "clients.control.app", "own trust store")


@pytest.mark.parametrize("value", ["intercepted-ish", "maybe", ""])
def test_an_unknown_tls_word_is_refused(value: str, seed_tree: Path) -> None:
    change(seed_tree / SCENARIO, lambda d: d["clients"]["regular"].update(tls=value))
    assert_refused(validate(seed_tree / SCENARIO), "clients.regular.tls", "intercept")
