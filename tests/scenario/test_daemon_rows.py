"""A row of the internet data file that runs real server software (``daemon``) is checked like
every input: a missing or outside config file, an unknown placeholder (in the command or in a
file), a command that is not an executable name — each one ``FILE:LINE: ...`` line and exit 2
from `validate` and from `run` (which starts nothing), never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from testbed.lab.internet_map import load_internet
from tests.scenario.conftest import assert_refused, change, run, validate

INTERNET = "lab/internet-2013.yaml"
FIXTURE = Path(__file__).parents[1] / "lab" / "daemon_fixture" / "servers"
GOOD = {"command": ["nginx", "-c", "{config}/nginx.conf", "-e", "{logs}/error.log",
                    "-g", "daemon off;"],
        "files": ["servers/nginx.conf", "servers/index.html"], "ready": 443,
        "names": ["www.example.lab.example"]}


@pytest.fixture
def tree(seed_tree: Path) -> Path:
    """The seed tree with nginx on its first server row."""
    shutil.copytree(FIXTURE, seed_tree / "lab" / "servers")
    change(seed_tree / INTERNET, lambda d: d["servers"][0].update(daemon=dict(GOOD)))
    return seed_tree


def _daemon(**kv: Any) -> Any:
    return lambda d: d["servers"][0]["daemon"].update(kv)


def _write(name: str, text: str) -> Any:
    return lambda folder: (folder / "lab" / "servers" / name).write_text(text)


CASES: dict[str, tuple[Any, Any, tuple[str, ...]]] = {  # edit, file edit, words
    "a config file that is missing": (
        _daemon(files=["servers/nginx.conf", "servers/nope.conf"]), None,
        ("servers[0].daemon.files[1]", "file not found", "nope.conf")),
    "a config file outside the tree": (
        _daemon(files=["/etc/hostname"]), None, ("outside the scenario's folder",)),
    "a config file up and out of the tree": (
        _daemon(files=["../../../etc/hostname"]), None, ("outside the scenario's folder",)),
    "two config files of one name": (
        _daemon(files=["servers/nginx.conf", "servers/../servers/nginx.conf"]), None,
        ("two files named 'nginx.conf'",)),
    "an unknown placeholder in a config file": (
        None, _write("nginx.conf", "pid {data}/x.pid;\nlisten {adress}:443;\n"),
        ("servers[0].daemon.files[0]", "servers/nginx.conf line 2",
         "unknown placeholder {adress}", "{address}", "{{adress}}")),
    "an unknown placeholder in a served page": (
        None, _write("index.html", "<p>{hostname}</p>"),
        ("daemon.files[1]", "line 1", "unknown placeholder {hostname}")),
    "a config file that is not text": (
        None, lambda folder: (folder / "lab" / "servers" / "index.html").write_bytes(b"\xff\xfe"),
        ("not a readable UTF-8 text file",)),
    "an unknown placeholder in the command": (
        _daemon(command=["nginx", "-c", "{conf}/nginx.conf"]), None,
        ("servers[0].daemon.command[2]", "unknown placeholder {conf}")),
    "a format spec in the command": (
        _daemon(command=["nginx", "-c", "{config:>9}"]), None, ("format specs",)),
    "an unbalanced brace in the command": (
        _daemon(command=["nginx", "-g", "events {"]), None, ("literal brace",)),
    "a command that is a path": (
        _daemon(command=["/usr/sbin/nginx"]), None, ("daemon.command[0]", "executable name")),
    "a command that is a shell line": (
        _daemon(command=["nginx -c x.conf"]), None, ("daemon.command[0]", "executable name")),
    "a command that is a placeholder": (
        _daemon(command=["{config}/run"]), None, ("daemon.command[0]", "executable name")),
    "an empty command": (_daemon(command=[]), None, ("daemon.command",)),
    "a command that is a string": (_daemon(command="nginx"), None, ("daemon.command",)),
    "no command": (lambda d: d["servers"][0]["daemon"].pop("command"), None, ("'command'",)),
    "no ready port": (lambda d: d["servers"][0]["daemon"].pop("ready"), None, ("'ready'",)),
    "a ready port out of range": (_daemon(ready=70000), None, ("daemon.ready",)),
    "ready_seconds zero": (_daemon(ready_seconds=0), None, ("daemon.ready_seconds",)),
    "a name that is not a DNS name": (_daemon(names=["a b"]), None, ("daemon.names[0]",)),
    "an unknown daemon key": (_daemon(user="root"), None, ("user",)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_daemon_row_with_a_mistake_is_refused(name: str, tree: Path, tmp_path: Path) -> None:
    edit, file_edit, words = CASES[name]
    if edit is not None:
        change(tree / INTERNET, edit)
    if file_edit is not None:
        file_edit(tree)
    scenario = tree / "skype-2013-lab.yaml"
    for outcome in (validate(tree / INTERNET), validate(scenario),
                    run(scenario, tmp_path / "results")):
        assert_refused(outcome, "internet-2013.yaml:", *words)
    assert not (tmp_path / "results").exists(), "a refused run must start nothing"


def test_a_good_daemon_row_validates_and_loads(tree: Path) -> None:
    assert validate(tree / INTERNET).verdict == "ok"
    row = load_internet(tree / INTERNET).servers[0]
    assert row.daemon is not None
    assert row.daemon.command[0] == "nginx" and row.daemon.ready == 443
    assert [p.name for p in row.daemon.files] == ["nginx.conf", "index.html"]
    assert all(p.is_absolute() and p.is_file() for p in row.daemon.files)
    assert row.names == (row.name, "www.example.lab.example")


@pytest.mark.parametrize("placeholder", ["address", "name", "cert", "key", "ca", "config",
                                         "data", "logs"])
def test_every_documented_placeholder_is_accepted(placeholder: str, tree: Path) -> None:
    (tree / "lab" / "servers" / "nginx.conf").write_text(f"x {{{placeholder}}};\n")
    change(tree / INTERNET, _daemon(command=["nginx", f"--opt={{{placeholder}}}"]))
    assert validate(tree / INTERNET).verdict == "ok"


def test_a_doubled_placeholder_is_literal_text_and_other_braces_are_the_files_own(
        tree: Path) -> None:
    (tree / "lab" / "servers" / "nginx.conf").write_text(
        "events { }\nhttp { map $x {{whatever}} { default 0; } }\n-- lua { \"a\"; }\n")
    assert validate(tree / INTERNET).verdict == "ok"
