"""The scenario language v1: the seed validates; every kind of mistake is located and worded."""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from pathlib import Path

import jsonschema
import pytest

from testbed._errors import ScenarioError
from testbed.scenario import (
    Problem,
    app_profile_schema,
    check_files,
    load_app_profile,
    load_scenario,
    scenario_schema,
)
from testbed.scenario.commands import print_schema, validate

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scenarios"

# A small valid scenario; tests edit one line of it. Line numbers are 1-based.
BASE = """\
scenario: x
version: 1
provider: lab
lab: {internet: lab/internet-2013.yaml}
clients:
  regular:
    app: refclient
    build: lab/builds/regular.yaml
    account: {user: alice, password_env: TB_TEST_PW_REGULAR}
  tom-en:
    app: refclient
    build: lab/builds/tom-en.yaml
    account: {user: bob}
sessions:
  - name: login
    parallel: true
    steps:
      - {variant: regular, action: login}
      - {variant: tom-en, action: login}
  - name: chat
    steps:
      - {variant: regular, action: chat_send, to: tom-en, text: "hi {canary}"}
      - {variant: tom-en, action: chat_wait, from: regular}
expectations:
  - {variant: regular, never_reaches: {country: CN}}
  - {variant: tom-en, id: tom-cn, reaches: {country: CN}}
"""


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the seed's scenarios/ folder in a fresh working directory."""
    shutil.copytree(SEED, tmp_path / "scenarios")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(text: str, name: str = "scenarios/x.yaml") -> str:
    Path(name).write_text(textwrap.dedent(text), encoding="utf-8")
    return name


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, old
    return write(text.replace(old, new))


def messages(*paths: str) -> list[str]:
    return [str(p) for p in check_files(list(paths))]


# -- the seed ------------------------------------------------------------------------------
def test_seed_files_all_validate() -> None:
    files = [
        SEED / "skype-2013-lab.yaml",
        SEED / "apps" / "refclient.yaml",
        SEED / "lab" / "internet-2013.yaml",
        *sorted((SEED / "lab" / "builds").glob("*.yaml")),
    ]
    assert check_files([str(f) for f in files]) == []
    assert check_files([str(SEED)]) == []


def test_seed_scenario_loads_into_the_model() -> None:
    s = load_scenario(SEED / "skype-2013-lab.yaml")
    assert s.name == "skype-2013-lab"
    assert s.provider == "lab"
    assert s.path == (SEED / "skype-2013-lab.yaml").resolve()
    assert s.internet_path == (SEED / "lab" / "internet-2013.yaml").resolve()
    assert list(s.clients) == ["regular", "tom-en", "tom-zh", "control", "cn-visitor"]
    assert s.clients["tom-zh"].app.name == "refclient-zh"
    tom = s.clients["tom-en"]
    assert tom.user == "bob"
    assert tom.password_env == "TESTBED_PASSWORD_TOM_EN"
    assert tom.build_path == (SEED / "lab" / "builds" / "tom-en.yaml").resolve()
    assert tom.app.name == "refclient"
    assert tom.app.images_dir == (SEED / "apps" / "refclient").resolve()
    assert tom.app.launch[0] == "{python}"
    assert tom.app.actions["login"][3] == {"type": "{password}", "secret": True}
    assert s.clients["regular"].app is tom.app  # one profile object per file
    assert [x.name for x in s.sessions] == ["launch", "login", "about", "call", "hang_up",
                                            "chat-tom", "chat-control", "download"]
    assert s.sessions[0].parallel and not s.sessions[5].parallel
    chat = s.sessions[5].steps[0]
    assert (chat.variant, chat.action) == ("regular", "chat_send")
    assert chat.params == {"to": "tom-zh", "text": "see you at lunch tomorrow"}
    assert chat.line == 72
    download = s.sessions[7].steps[0]
    assert (download.variant, download.action) == ("regular", "download")
    assert download.params == {"url": "http://www.skype.lab.example/SkypeSetup.exe"}
    ids = [e.id for e in s.expectations]
    assert ids == [
        "regular-never_reaches-country-CN",
        "control-never_reaches-country-CN",
        "tom-en-reaches-country-CN",
        "tom-zh-reaches-country-CN",
        "chat-with-tom-user-reaches-china",
        "chat-with-regular-peer-stays-out-of-china",
        "tom-user-never-sees-censored-word",
        "regular-peer-sees-censored-word",
        "default-vantage-download-not-redirected",
        "default-vantage-gets-skypes-build", "china-vantage-download-redirected-to-tom",
        "china-vantage-gets-toms-build",
    ]
    assert s.expectations[0].kind == "never_reaches"
    assert s.expectations[0].place == {"country": "CN"}
    assert s.expectations[0].line == 97
    served = s.expectations[-1]
    assert (served.kind, served.download) == ("served", download.params["url"])
    assert served.to_json()["download"] == download.params["url"]
    assert s.sha256 == hashlib.sha256((SEED / "skype-2013-lab.yaml").read_bytes()).hexdigest()


def test_base_scenario_is_valid(tree: Path) -> None:
    assert messages(write(BASE)) == []
    s = load_scenario("scenarios/x.yaml")
    assert s.expectations[1].id == "tom-cn"
    assert s.clients["tom-en"].password_env is None


# -- each kind of mistake ------------------------------------------------------------------
def test_unknown_app_profile_exact_message(tree: Path) -> None:
    f = edit("  tom-en:\n    app: refclient", "  tom-en:\n    app: refclinet")
    assert messages(f) == [
        "scenarios/x.yaml:11: clients.tom-en.app: unknown app profile 'refclinet'"
    ]


def test_yaml_syntax_error_has_file_and_line(tree: Path) -> None:
    f = edit("  - name: chat\n", "  - name: chat\n   bad: [unclosed\n")
    (msg,) = messages(f)
    assert msg.startswith("scenarios/x.yaml:21: YAML syntax error: ")


def test_unknown_key(tree: Path) -> None:
    f = edit("provider: lab\n", "provider: lab\nfoo: 1\n")
    assert messages(f) == ["scenarios/x.yaml:4: foo: unknown key 'foo'"]


def test_unknown_key_in_a_nested_mapping(tree: Path) -> None:
    f = edit("{user: bob}", "{user: bob, pasword_env: X}")
    assert messages(f) == [
        "scenarios/x.yaml:13: clients.tom-en.account.pasword_env: unknown key 'pasword_env'"
    ]


def test_wrong_enum(tree: Path) -> None:
    f = edit("provider: lab", "provider: qemu")
    assert messages(f) == ["scenarios/x.yaml:3: provider: expected one of lab, vagrant, got 'qemu'"]


def test_wrong_version(tree: Path) -> None:
    f = edit("version: 1", "version: 2")
    assert messages(f) == ["scenarios/x.yaml:2: version: expected 1, got 2"]


def test_missing_required_key(tree: Path) -> None:
    start, end = BASE.index("clients:"), BASE.index("sessions:")
    f = write(BASE[:start] + BASE[end:])
    msgs = messages(f)
    assert "scenarios/x.yaml:1: missing required key 'clients'" in msgs
    # the steps' variants are now unknown too: every problem is reported
    assert any("unknown variant 'regular'" in m for m in msgs)


def test_lab_section_required_for_provider_lab(tree: Path) -> None:
    f = edit("lab: {internet: lab/internet-2013.yaml}\n", "")
    assert messages(f) == ["scenarios/x.yaml:1: missing required key 'lab' (provider is lab)"]


def test_lab_section_optional_for_vagrant(tree: Path) -> None:
    text = BASE.replace("provider: lab", "provider: vagrant")
    f = edit("lab: {internet: lab/internet-2013.yaml}\n", "", text)
    assert messages(f) == ["scenarios/x.yaml:1: missing required key 'vagrant' "
                           "(provider is vagrant)"]
    f = edit("lab: {internet: lab/internet-2013.yaml}\n",
             "vagrant: {hypervisor: libvirt, management_network: 172.28.0.0/24}\n", text)
    assert messages(f) == []
    s = load_scenario(f)
    assert s.internet_path is None and s.vagrant == {
        "hypervisor": "libvirt", "management_network": "172.28.0.0/24"}


def test_unknown_variant_in_step(tree: Path) -> None:
    f = edit("{variant: tom-en, action: login}", "{variant: tom-xx, action: login}")
    assert messages(f) == [
        "scenarios/x.yaml:19: sessions[0].steps[1].variant: unknown variant 'tom-xx' "
        "(clients: regular, tom-en)"
    ]


def test_param_naming_an_unknown_variant(tree: Path) -> None:
    f = edit("from: regular}", "from: regualr}")
    assert messages(f) == [
        "scenarios/x.yaml:23: sessions[1].steps[1].from: unknown variant 'regualr' "
        "(clients: regular, tom-en)"
    ]


def test_unknown_action(tree: Path) -> None:
    f = edit("{variant: regular, action: login}", "{variant: regular, action: logn}")
    (msg,) = messages(f)
    assert msg.startswith(
        "scenarios/x.yaml:18: sessions[0].steps[0].action: unknown action 'logn' for app "
        "'refclient' (has: launch, login"
    )


def test_placeholder_the_step_cannot_provide(tree: Path) -> None:
    # chat_send types {text}: without a text param the step cannot fill it in
    f = edit(', text: "hi {canary}"}', "}")
    assert messages(f) == [
        "scenarios/x.yaml:22: sessions[1].steps[0].action: action 'chat_send' of app "
        "'refclient' needs {text}, which this step does not provide"
    ]


def test_to_user_needs_a_to_param(tree: Path) -> None:
    f = edit("to: tom-en, text:", "recipient: tom-en, text:")
    assert messages(f) == [
        "scenarios/x.yaml:22: sessions[1].steps[0].action: action 'chat_send' of app "
        "'refclient' needs {to_user}, which this step does not provide"
    ]


def test_param_value_placeholders_are_checked(tree: Path) -> None:
    f = edit('"hi {canary}"', '"hi {canry}"')
    assert messages(f) == [
        "scenarios/x.yaml:22: sessions[1].steps[0].text: unknown placeholder {canry} "
        "(a step's fields can use {canary} only)"
    ]


def test_placeholder_in_app_profile_needs_the_step_param(tree: Path) -> None:
    profile = Path("scenarios/apps/refclient.yaml")
    profile.write_text(
        profile.read_text().replace('{type: "{text}"}', '{type: "{text} {mood}"}'),
        encoding="utf-8",
    )
    (msg,) = messages(write(BASE))
    assert msg.endswith("needs {mood}, which this step does not provide")
    assert msg.startswith("scenarios/x.yaml:22: sessions[1].steps[0].action: ")
    # a step that provides it is fine
    f = edit('text: "hi {canary}"', 'text: "hi {canary}", mood: happy')
    assert messages(f) == []


def test_missing_build_file(tree: Path) -> None:
    f = edit("lab/builds/regular.yaml", "lab/builds/regualr.yaml")
    assert messages(f) == [
        "scenarios/x.yaml:8: clients.regular.build: "
        "file not found: scenarios/lab/builds/regualr.yaml"
    ]


def test_missing_internet_file(tree: Path) -> None:
    f = edit("lab/internet-2013.yaml", "lab/internet.yaml")
    assert messages(f) == [
        "scenarios/x.yaml:4: lab.internet: file not found: scenarios/lab/internet.yaml"
    ]


def test_referenced_data_file_with_bad_yaml_is_reported_in_that_file(tree: Path) -> None:
    Path("scenarios/lab/builds/regular.yaml").write_text("build: [regular\n", encoding="utf-8")
    (msg,) = messages(write(BASE))
    assert msg.startswith("scenarios/lab/builds/regular.yaml:2: YAML syntax error:")


def test_empty_file(tree: Path) -> None:
    assert messages(write("")) == ["scenarios/x.yaml:1: file is empty, expected a mapping"]
    assert messages(write("# only a comment\n")) == [
        "scenarios/x.yaml:1: file is empty, expected a mapping"
    ]


def test_not_a_mapping(tree: Path) -> None:
    assert messages(write("- a\n- b\n")) == ["scenarios/x.yaml:1: expected a mapping, got a list"]
    assert messages(write("just text\n")) == [
        "scenarios/x.yaml:1: expected a mapping, got 'just text'"
    ]


def test_nonexistent_file(tree: Path) -> None:
    assert messages("scenarios/nope.yaml") == ["scenarios/nope.yaml: file not found"]


def test_duplicate_expectation_ids(tree: Path) -> None:
    f = edit(
        "  - {variant: tom-en, id: tom-cn, reaches: {country: CN}}\n",
        "  - {variant: tom-en, id: tom-cn, reaches: {country: CN}}\n"
        "  - {variant: regular, id: tom-cn, never_reaches: {country: US}}\n"
        "  - {variant: regular, never_reaches: {country: CN}}\n",
    )
    assert messages(f) == [
        "scenarios/x.yaml:27: expectations[2].id: duplicate expectation id 'tom-cn' "
        "(first at line 26)",
        "scenarios/x.yaml:28: expectations[3]: duplicate expectation id "
        "'regular-never_reaches-country-CN' (first at line 25)",
    ]


def test_expectation_needs_exactly_one_claim_and_a_known_country(tree: Path) -> None:
    f = edit(
        "{variant: regular, never_reaches: {country: CN}}",
        "{variant: ghost, reaches: {country: UK}, never_reaches: {country: NO}}",
    )
    assert messages(f) == [
        "scenarios/x.yaml:25: expectations[0]: expected only one of the keys reaches, "
        "never_reaches, only_reaches, passes_through, does_not_pass_through, delivered, "
        "not_delivered, canary_reaches, canary_never_reaches, media_passes_through, "
        "media_does_not_pass_through, redirected_to, not_redirected_to, served, got reaches "
        "and never_reaches",
        "scenarios/x.yaml:25: expectations[0].never_reaches.country: expected a string, got "
        "false (quote it: YAML reads yes/no/on/off/true/false as booleans)",
        "scenarios/x.yaml:25: expectations[0].reaches.country: expected an ISO 3166-1 alpha-2 "
        "country code such as CN or GB, got 'UK'",
        "scenarios/x.yaml:25: expectations[0].variant: unknown variant 'ghost' "
        "(clients: regular, tom-en)",
    ]


def test_duplicate_yaml_key(tree: Path) -> None:
    f = edit("version: 1\n", "version: 1\nversion: 1\n")
    assert messages(f) == [
        "scenarios/x.yaml:3: version: duplicate key 'version' (first at line 2); the last one wins"
    ]


def test_invalid_app_profile_is_reported_in_its_own_file(tree: Path) -> None:
    write(
        """\
        app: refclient
        launch: ["{python}"]
        actions:
          login:
            - {click_image: signin-button.png, confidnce: 0.5}
            - {type: x, press: y}
            - {sleep: -1}
        """,
        "scenarios/apps/refclient.yaml",
    )
    msgs = messages(write(BASE))
    assert msgs[:3] == [
        "scenarios/apps/refclient.yaml:5: actions.login[0].confidnce: unknown key 'confidnce'",
        "scenarios/apps/refclient.yaml:6: actions.login[1]: expected only one of the keys run, "
        "click_image, wait_image, absent_image, wait_window, type, press, hotkey, screenshot, "
        "sleep, download, got type and press",
        "scenarios/apps/refclient.yaml:7: actions.login[2].sleep: expected a number >= 0, got -1",
    ]
    # the scenario's steps name actions the (partly valid) profile does not have
    assert "unknown action 'chat_send'" in msgs[3]
    with pytest.raises(ScenarioError):
        load_scenario("scenarios/x.yaml")
    with pytest.raises(ScenarioError):
        load_app_profile("scenarios/apps/refclient.yaml")


def test_app_profile_checked_once_when_named_twice(tree: Path) -> None:
    write(
        "app: other\nlaunch: [x]\nactions: {go: [{press: enter}]}\n",
        "scenarios/apps/refclient.yaml",
    )
    msgs = messages(write(BASE), "scenarios/apps/refclient.yaml")
    name_problems = [m for m in msgs if "does not match the file name" in m]
    assert name_problems == [
        "scenarios/apps/refclient.yaml:1: app: app name 'other' does not match the file name "
        "'refclient.yaml'"
    ]


def test_several_problems_all_reported_sorted_by_file_and_line(tree: Path) -> None:
    text = BASE.replace("provider: lab", "provider: qemu").replace("version: 1", "version: 3")
    text = text.replace("{variant: tom-en, action: login}", "{variant: tom-xx, action: login}")
    f = write(text.replace("  tom-en:\n    app: refclient", "  tom-en:\n    app: refclinet"))
    problems = check_files([f, "scenarios/missing.yaml"])
    assert [(p.file, p.line, p.key) for p in problems] == [
        ("scenarios/missing.yaml", None, ""),
        ("scenarios/x.yaml", 2, "version"),
        ("scenarios/x.yaml", 3, "provider"),
        ("scenarios/x.yaml", 11, "clients.tom-en.app"),
        ("scenarios/x.yaml", 19, "sessions[0].steps[1].variant"),
    ]
    with pytest.raises(ScenarioError) as err:
        load_scenario(f)
    assert str(err.value).splitlines() == [str(p) for p in problems[1:]]


def test_problem_str() -> None:
    assert str(Problem("a.yaml", 3, "x.y", "bad")) == "a.yaml:3: x.y: bad"
    assert str(Problem("a.yaml", 3, "", "bad")) == "a.yaml:3: bad"
    assert str(Problem("a.yaml", None, "", "bad")) == "a.yaml: bad"


# -- passwords -----------------------------------------------------------------------------
def test_password_from_env_or_lab_default(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_scenario(write(BASE))
    monkeypatch.delenv("TB_TEST_PW_REGULAR", raising=False)
    assert s.clients["regular"].password() == "lab-regular"
    assert s.clients["tom-en"].password() == "lab-tom-en"
    monkeypatch.setenv("TB_TEST_PW_REGULAR", "s3cret")
    assert s.clients["regular"].password() == "s3cret"
    assert "s3cret" not in repr(s)
    monkeypatch.setenv("TB_TEST_PW_REGULAR", "")
    assert s.clients["regular"].password() == "lab-regular"


# -- schema and commands -------------------------------------------------------------------
def test_schemas_are_valid_json_schema() -> None:
    for schema in (scenario_schema(), app_profile_schema()):
        jsonschema.Draft202012Validator.check_schema(schema)
        json.dumps(schema)
    import yaml

    for schema, file in (
        (scenario_schema(), "skype-2013-lab.yaml"),
        (app_profile_schema(), "apps/refclient.yaml"),
    ):
        data = yaml.safe_load((SEED / file).read_text(encoding="utf-8"))
        assert list(jsonschema.Draft202012Validator(schema).iter_errors(data)) == []


def test_missing_nested_key_points_at_its_parent(tree: Path) -> None:
    f = edit("{user: bob}", "{password_env: X}")
    assert messages(f) == [
        "scenarios/x.yaml:13: clients.tom-en.account: missing required key 'user'"
    ]


def test_validate_command(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(["scenarios/skype-2013-lab.yaml", "scenarios/apps"]) == 0
    out, err = capsys.readouterr()
    profiles = len(list(Path("scenarios/apps").glob("*.yaml")))  # + the scenario itself
    assert (out, err) == (f"ok: {profiles + 1} file(s) valid\n", "")
    f = edit("provider: lab", "provider: qemu")
    assert validate([f, "scenarios/nope.yaml"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "scenarios/nope.yaml: file not found",
        "scenarios/x.yaml:3: provider: expected one of lab, vagrant, got 'qemu'",
    ]


def test_print_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert print_schema() == 0
    assert json.loads(capsys.readouterr().out) == scenario_schema()
    assert print_schema("app") == 0
    assert json.loads(capsys.readouterr().out) == app_profile_schema()
    assert print_schema("nope") == 2
    assert "unknown kind 'nope'" in capsys.readouterr().err


def test_chat_expectations_load_and_are_checked(tree: Path) -> None:
    f = edit("expectations:", "expectations:\n"
             "  - {chat: {from: regular, to: tom-en, text_contains: hi}, "
             "passes_through: {country: CN, asn: 4134}, min_strength: strong}\n"
             "  - {chat: {from: regular, to: nobody}, delivered: true}\n"
             "  - {variant: regular, only_reaches: [{country: US}, {network: not-a-net}]}\n"
             "  - {chat: {from: regular, to: tom-en}, passes_through: {planet: mars}}")
    msgs = messages(f)
    assert any(".chat.to: unknown variant 'nobody'" in m for m in msgs), msgs
    assert any("only_reaches[1].network: not a network: 'not-a-net'" in m for m in msgs), msgs
    assert any("passes_through.planet: unknown key 'planet'" in m for m in msgs), msgs


def test_chat_expectation_model(tree: Path) -> None:
    f = edit("expectations:", "expectations:\n"
             "  - {chat: {from: regular, to: tom-en, text_contains: hi}, "
             "passes_through: {country: CN}, min_strength: strong}\n"
             "  - {variant: regular, only_reaches: [{country: US}, {asn: 7018}]}")
    s = load_scenario(f)
    chat, only = s.expectations[0], s.expectations[1]
    assert (chat.kind, chat.variant, chat.place, chat.min_strength) == (
        "passes_through", "regular", {"country": "CN"}, "strong")
    assert chat.chat == {"from": "regular", "to": "tom-en", "text_contains": "hi"}
    assert chat.id == "chat-regular-tom-en-passes_through-country-CN"
    assert only.places == [{"country": "US"}, {"asn": 7018}] and only.place == {}


def test_app_profiles_accept_exactly_the_agents_verbs() -> None:
    from testbed.agent.verbs import VERBS
    from testbed.scenario import app_profile_schema

    step = app_profile_schema()["$defs"]["step"]
    assert [branch["required"][0] for branch in step["oneOf"]] == list(VERBS)


def test_the_expectation_kinds_are_one_list() -> None:
    import typing

    from testbed.run.manifest import (
        CANARY_KINDS,
        CHAT_KINDS,
        DOWNLOAD_KINDS,
        MEDIA_KINDS,
        REACH_KINDS,
    )
    from testbed.scenario.model import EXPECTATION_KINDS, ExpectationKind

    assert EXPECTATION_KINDS == (*REACH_KINDS, *CHAT_KINDS, *CANARY_KINDS, *MEDIA_KINDS,
                                 *DOWNLOAD_KINDS) == typing.get_args(ExpectationKind)
