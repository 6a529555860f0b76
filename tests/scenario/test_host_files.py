"""Host files: every file a scenario names, directly or through its app profiles and data
files, stays inside the scenario's folder tree (symlinks resolved) unless the user names the
outside place with ``--allow-outside PATH``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.scenario.conftest import assert_refused, change, run, validate

SCENARIO = "skype-2013-lab.yaml"


def _client(**kv: Any) -> Any:
    return lambda d: d["clients"]["regular"].update(kv)


# (file edited, edit, key named, outside path the flag must name to allow it)
CASES: dict[str, tuple[str, Any, str, str]] = {
    "build: /etc/shadow": (SCENARIO, _client(build="/etc/shadow"), "clients.regular.build",
                           "/etc"),
    "build: /etc/passwd": (SCENARIO, _client(build="/etc/passwd"), "clients.regular.build",
                           "/etc"),
    "build: ../ out of the tree": (SCENARIO, _client(build="../../../../../../etc/hostname"),
                                   "clients.regular.build", "/etc"),
    "build: dot-dot out and in beside the tree": (SCENARIO, _client(
        build="lab/../../outside.yaml"), "clients.regular.build", "OUT"),
    "lab.internet: absolute": (SCENARIO, lambda d: d["lab"].update(internet="/etc/hosts"),
                               "lab.internet", "/etc"),
    "lab.internet: dot-dot": (SCENARIO, lambda d: d["lab"].update(
        internet="../outside.yaml"), "lab.internet", "OUT"),
    "app images folder: dot-dot": ("apps/refclient.yaml", lambda d: d.update(images="../.."),
                                   "images", "OUT"),
    "app images folder: absolute": ("apps/refclient.yaml", lambda d: d.update(images="/etc"),
                                    "images", "/etc"),
    "image name: absolute": ("apps/refclient.yaml", lambda d: d["actions"]["about"][0].update(
        click_image="/etc/shadow"), "actions.about[0].click_image", "/etc"),
    "image name: dot-dot": ("apps/refclient.yaml", lambda d: d["actions"]["about"][0].update(
        click_image="../../../../etc/shadow"), "actions.about[0].click_image", "/etc"),
    "image name: into a sibling folder": (
        "apps/refclient.yaml", lambda d: d["actions"]["about"][0].update(
            click_image="../refclient-zh/about-button.png"), "actions.about[0].click_image",
        "NONE"),
    "tls cert: absolute": ("lab/internet-2013.yaml", lambda d: d["tls"].update(
        cert="/etc/shadow"), "tls.cert", "/etc"),
    "tls key: dot-dot": ("lab/internet-2013.yaml", lambda d: d["tls"].update(
        key="../../outside.yaml"), "tls.key", "OUT"),
    "pinned cert: absolute": ("lab/builds/regular.yaml", lambda d: d["pin"].update(
        {"srv-64-4-21-39.us.lab.example": "/etc/ssl/certs/ca-certificates.crt"}), "pin.",
        "/etc"),
}
LINKS = {
    "build: a symlink out of the tree": ("lab/builds/evil.yaml", "/etc/hostname",
                                         "clients.regular.build"),
    "internet: a symlink out of the tree": ("lab/evil.yaml", "/etc/hosts", "lab.internet"),
}


@pytest.fixture
def outside(seed_tree: Path) -> Path:
    """A valid build profile beside the tree (not in it)."""
    f = seed_tree.parent / "outside.yaml"
    f.write_text((seed_tree / "lab" / "builds" / "regular.yaml").read_text()
                 .replace("../certs/internet-cert.pem", "scenarios/lab/certs/internet-cert.pem"))
    return f


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_reference_out_of_the_tree_is_refused(name: str, seed_tree: Path, outside: Path,
                                                tmp_path: Path) -> None:
    target, edit, key, _ = CASES[name]
    change(seed_tree / target, edit)
    scenario = seed_tree / SCENARIO
    for outcome in (validate(scenario), run(scenario, tmp_path / "r")):
        assert_refused(outcome, key, "outside")
    assert not (tmp_path / "r").exists(), "nothing was started, nothing was read"


@pytest.mark.parametrize("name", sorted(LINKS))
def test_a_symlink_out_of_the_tree_is_refused(name: str, seed_tree: Path,
                                              tmp_path: Path) -> None:
    link, to, key = LINKS[name]
    (seed_tree / link).symlink_to(to)
    edit = _client(build=link) if "build" in key else (
        lambda d: d["lab"].update(internet=link))
    change(seed_tree / SCENARIO, edit)
    for outcome in (validate(seed_tree / SCENARIO), run(seed_tree / SCENARIO, tmp_path / "r")):
        assert_refused(outcome, key, "outside")


@pytest.mark.parametrize("name", ["build: dot-dot out and in beside the tree",
                                  "lab.internet: dot-dot"])
def test_allow_outside_lets_the_user_name_a_place(name: str, seed_tree: Path,
                                                   outside: Path, tmp_path: Path) -> None:
    target, edit, key, _ = CASES[name]
    if key == "lab.internet":
        inet = (seed_tree / "lab" / "internet-2013.yaml").read_text()
        outside.write_text(inet.replace("certs/", "scenarios/lab/certs/")
                           .replace("exits/", "scenarios/lab/exits/"))
    change(seed_tree / target, edit)
    scenario = seed_tree / SCENARIO
    assert_refused(validate(scenario), key, "--allow-outside")
    flag = ["--allow-outside", str(outside)]
    assert validate(scenario, *flag).verdict == "ok"
    outcome = run(scenario, tmp_path / "r", *flag)
    assert outcome.verdict == "ok" and outcome.code in (0, 1), outcome


def test_allow_outside_is_documented(capsys: pytest.CaptureFixture[str]) -> None:
    from testbed.cli import build_parser

    for command in ("validate", "run"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--allow-outside PATH" in text and "outside the scenario's folder" in text


def test_the_shipped_scenarios_stay_in_their_tree(seed_tree: Path) -> None:
    assert validate(seed_tree).verdict == "ok"
    for f in sorted(seed_tree.glob("*.yaml")):
        assert validate(f).verdict == "ok", f
