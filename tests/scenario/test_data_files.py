"""Internet data files and build profiles get the scenario treatment: a wrong shape is one
``FILE:LINE: ...`` line and exit 2, from `validate` and from `run`, never a traceback or a
silently dropped entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testbed._errors import ScenarioError
from testbed.lab.internet_map import load_internet
from tests.scenario.conftest import assert_refused, change, run, validate

INTERNET = "lab/internet-2013.yaml"
BUILD = "lab/builds/tom-zh.yaml"


def _server(i: int, **kv: Any) -> Any:
    return lambda d: d["servers"][i].update(kv)


def _drop(*path: Any) -> Any:
    def edit(d: Any) -> None:
        for p in path[:-1]:
            d = d[p]
        del d[path[-1]]
    return edit


INTERNET_CASES: dict[str, tuple[Any, str]] = {
    "countries as a list": (lambda d: d.update(countries=["CN", "GB"]), "countries"),
    "country name not text": (lambda d: d["countries"].update(CN=[1]), "countries.CN"),
    "unknown country code": (lambda d: d["countries"].update(XX="Nowhere"), "XX"),
    "special without address": (_drop("special", 0, "address"), "'address'"),
    "special without kind": (_drop("special", 0, "kind"), "'kind'"),
    "special address not an IP": (lambda d: d["special"][0].update(address="nope"), "nope"),
    "special as a mapping": (lambda d: d.update(special={"a": 1}), "special"),
    "keywords: {monitor: 5}": (lambda d: d.update(keywords={"monitor": 5}), "keywords.monitor"),
    "keywords as a list": (lambda d: d.update(keywords=["x"]), "keywords"),
    "unknown keyword kind": (lambda d: d["keywords"].update(shout=["x"]), "shout"),
    "tls as a string": (lambda d: d.update(tls="certificate.pem"), "tls"),
    "tls without key": (_drop("tls", "key"), "'key'"),
    "tls cert missing": (lambda d: d["tls"].update(cert="certs/none.pem"), "file not found"),
    "newline in a server name": (_server(3, name="a\nb.example"), "servers[3].name"),
    "space in a server name": (_server(3, name="a b.example"), "servers[3].name"),
    "trailing newline in a server name": (_server(3, name="a.example\n"), "servers[3].name"),
    "NUL in a server name": (_server(3, name="a\x00.example"), "servers[3].name"),
    "server name a list": (_server(3, name=["a"]), "servers[3].name"),
    "server without address": (_drop("servers", 2, "address"), "'address'"),
    "server without name": (_drop("servers", 2, "name"), "'name'"),
    "server address not an IP": (_server(1, address="300.1.1.1"), "not an IP address"),
    "server address public": (_server(1, address="8.8.8.8"), "documentation block"),
    "server address duplicate": (_server(1, address="203.0.113.250"), "duplicate address"),
    "server name duplicate": (_server(1, name="srv-117-25-148-250.cn.lab.example"),
                              "duplicate name"),
    "stands_for not an IP": (_server(1, stands_for="somewhere"), "not an IP address"),
    "builds not a number": (_server(1, builds="two"), "servers[1].builds"),
    "builds huge": (_server(1, builds=10**30), "servers[1].builds"),
    "contacted_by a string": (_server(1, contacted_by="tom-en"), "contacted_by"),
    "unknown proto": (_server(1, proto="gopher"), "servers[1].proto"),
    "unknown server key": (_server(1, colour="red"), "colour"),
    "country lower case": (_server(1, country="cn"), "servers[1].country"),
    "servers a mapping": (lambda d: d.update(servers={"a": 1}), "servers"),
    "servers empty": (lambda d: d.update(servers=[]), "servers"),
    "servers missing": (_drop("servers"), "'servers'"),
    "unknown top-level key": (lambda d: d.update(extra=1), "extra"),
    "control character in a note": (lambda d: d["special"][0].update(note="a\x07b"), "control"),
}

BUILD_CASES: dict[str, tuple[Any, str]] = {
    "login a string": (lambda d: d.update(login="tls://x:443/"), "login"),
    "login url without scheme": (lambda d: d["login"].append("srv.example"), "login"),
    "url with a newline": (lambda d: d["login"].append("tls://a\n.example/"), "login"),
    "chat a list": (lambda d: d.update(chat=[1]), "chat"),
    "presence_every zero": (lambda d: d["chat"].update(presence_every=0), "presence_every"),
    "packets_per_second text": (lambda d: d["call"].update(packets_per_second="x"),
                                "packets_per_second"),
    "surveillance accounts a string": (lambda d: d["surveillance"].update(accounts="bob"),
                                       "accounts"),
    "pin outside the tree": (lambda d: d.update(pin={"a.example": "/etc/shadow"}), "outside"),
    "pin missing file": (lambda d: d.update(pin={"a.example": "../certs/none.pem"}),
                         "file not found"),
    "unknown theme": (lambda d: d.update(theme="neon"), "theme"),
    "product missing": (_drop("product"), "'product'"),
    "unknown key": (lambda d: d.update(colour="red"), "colour"),
}


@pytest.mark.parametrize("name", sorted(INTERNET_CASES))
def test_an_internet_file_of_the_wrong_shape_is_refused(name: str, seed_tree: Path,
                                                         tmp_path: Path) -> None:
    edit, words = INTERNET_CASES[name]
    change(seed_tree / INTERNET, edit)
    scenario = seed_tree / "skype-2013-lab.yaml"
    for outcome in (validate(seed_tree / INTERNET), validate(scenario),
                    run(scenario, tmp_path / "results")):
        assert_refused(outcome, "internet-2013.yaml:", words)
    assert not (tmp_path / "results").exists(), "a refused run must start nothing"
    with pytest.raises(ScenarioError):  # the lab's own services load it the same way
        if "file not found" not in words:
            load_internet(seed_tree / INTERNET)
        else:
            raise ScenarioError("a run's copy names no files: checked by the scenario")


@pytest.mark.parametrize("name", sorted(BUILD_CASES))
def test_a_build_profile_of_the_wrong_shape_is_refused(name: str, seed_tree: Path,
                                                        tmp_path: Path) -> None:
    edit, words = BUILD_CASES[name]
    change(seed_tree / BUILD, edit)
    scenario = seed_tree / "skype-2013-lab.yaml"
    for outcome in (validate(seed_tree / BUILD), validate(scenario),
                    run(scenario, tmp_path / "results")):
        assert_refused(outcome, "tom-zh.yaml:", words)


def test_the_shipped_data_files_validate_and_load(seed_tree: Path) -> None:
    files = sorted((seed_tree / "lab").rglob("*.yaml"))
    assert len(files) >= 6
    assert validate(*files).verdict == "ok"
    for f in files:
        if f.name.startswith("internet-20"):  # the seed study's internets (2013, 2024)
            m = load_internet(f)
            assert len(m.servers) + len(m.special) >= 62  # the 62 rows of the 2013 table
        elif f.name.startswith("internet"):   # another study's (internet-xmpp.yaml)
            assert load_internet(f).servers


def test_a_file_of_another_kind_named_as_internet_is_refused(seed_tree: Path) -> None:
    text = (seed_tree / "skype-2013-lab.yaml").read_text()
    (seed_tree / "skype-2013-lab.yaml").write_text(
        text.replace("lab/internet-2013.yaml", "lab/builds/tom-zh.yaml", 1))
    assert_refused(validate(seed_tree / "skype-2013-lab.yaml"), "tom-zh.yaml:1",
                   "expected an internet data file")


@pytest.mark.parametrize("kind,pattern", [("internet", "internet-*.yaml"),
                                          ("build", "builds/*.yaml")])
def test_the_data_schemas_are_published_for_editors(kind: str, pattern: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import jsonschema
    import yaml

    from testbed.scenario.commands import print_schema
    from tests.scenario.fuzzing import SEED_TREE

    assert print_schema(kind) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    files = sorted((SEED_TREE / "lab").glob(pattern))
    assert files
    for f in files:
        jsonschema.validate(yaml.safe_load(f.read_text(encoding="utf-8")), schema)
