"""Load and check scenario files and app profiles, reporting every problem with file:line: key.

    load_scenario(path) -> Scenario            raises ScenarioError listing all problems
    check_files(paths)  -> list[Problem]       scenarios, app profiles, lab data, build profiles

Paths inside a scenario are relative to its folder; app profile NAME is ``apps/NAME.yaml``
beside the scenario. Problems in a referenced file are reported with that file's own path.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jsonschema

from testbed._errors import ScenarioError
from testbed.scenario._problem import KeyPath, Problem, dotted
from testbed.scenario._yaml import YamlDoc, load_yaml
from testbed.scenario.model import (
    AppProfile,
    Client,
    Expectation,
    ExpectationKind,
    Scenario,
    Session,
    Step,
    default_expectation_id,
    placeholders,
)
from testbed.scenario.schema import NAME_PATTERN, app_profile_schema, scenario_schema

BASE_PLACEHOLDERS = frozenset({"user", "password", "canary", "python", "build"})
VARIANT_PARAMS = ("to", "from")
EXPECTATION_KINDS: tuple[ExpectationKind, ...] = (
    "reaches", "never_reaches", "only_reaches", "passes_through", "does_not_pass_through",
    "delivered", "not_delivered")


class ScenarioProblems(ScenarioError):
    """A ScenarioError that carries its problems; the message has one problem per line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class _Doc:
    """A file that parsed to a mapping."""

    file: str  # as the user gave it (or derived from what they gave)
    path: Path  # resolved
    raw: bytes
    yaml: YamlDoc

    @property
    def data(self) -> dict[Any, Any]:
        return cast(dict[Any, Any], self.yaml.data)

    def at(self, path: KeyPath, message: str) -> Problem:
        return Problem(self.file, self.yaml.line(path), dotted(path), message)


class _Checker:
    """Checks files, each at most once, collecting problems."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._seen: set[Path] = set()
        self._profiles: dict[Path, tuple[_Doc | None, bool]] = {}  # doc, valid

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    # -- reading ---------------------------------------------------------------------------
    def read(self, file: str, report: bool = True) -> _Doc | None:
        """Parse ``file`` to a mapping, or report why not (once per file) and return None."""
        path = Path(file)
        found: list[Problem] = []
        doc = None
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            found.append(Problem(file, None, "", "file not found"))
        except IsADirectoryError:
            found.append(Problem(file, None, "", "is a folder, expected a YAML file"))
        except OSError as e:
            found.append(Problem(file, None, "", f"cannot read: {e.strerror or e}"))
        else:
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError as e:
                line = raw.count(b"\n", 0, e.start) + 1
                found.append(Problem(file, line, "", "not UTF-8 text"))
            else:
                yd = load_yaml(text, file)
                found.extend(yd.problems)
                if yd.empty:
                    found.append(Problem(file, 1, "", "file is empty, expected a mapping"))
                elif not found and not isinstance(yd.data, dict):
                    found.append(
                        Problem(file, 1, "", f"expected a mapping, got {_describe(yd.data)}")
                    )
                if isinstance(yd.data, dict):
                    doc = _Doc(file, path.resolve(), raw, yd)
        key = path.resolve()
        if report and key not in self._seen:
            self.problems.extend(found)
        self._seen.add(key)
        return doc

    def schema(self, doc: _Doc, schema: dict[str, Any]) -> None:
        for p in _schema_problems(doc, schema):
            self.add(p)

    # -- files by kind -------------------------------------------------------------------
    def file(self, file: str) -> None:
        """Check one file given by the user, whatever its kind."""
        doc = self.read(file)
        if doc is None:
            return
        kind = _kind(doc.data)
        if kind == "scenario":
            self.scenario(doc)
        elif kind == "app":
            self.profile(file, doc)
        # lab data and build profiles: YAML mappings; their content belongs to testbed.lab

    def profile(self, file: str, doc: _Doc | None = None) -> tuple[_Doc | None, bool]:
        """Check an app profile once; returns (doc, valid)."""
        key = Path(file).resolve()
        if key in self._profiles:
            return self._profiles[key]
        if doc is None:
            doc = self.read(file)
        before = len(self.problems)
        if doc is not None:
            self.schema(doc, app_profile_schema())
            _check_profile(doc, self.add)
        result = (doc, doc is not None and len(self.problems) == before)
        self._profiles[key] = result
        return result

    def scenario(self, doc: _Doc) -> Scenario | None:
        """Check a scenario; returns it when it (and every file it names) is valid."""
        before = len(self.problems)
        self.schema(doc, scenario_schema())
        data = doc.data
        folder = Path(doc.file).parent

        internet = _get(data, "lab", "internet")
        if isinstance(internet, str) and internet:
            self.ref(doc, ("lab", "internet"), folder / internet)

        clients = data.get("clients")
        clients = clients if isinstance(clients, dict) else {}
        profiles: dict[Any, _Doc | None] = {}
        for variant, client in clients.items():
            if not isinstance(client, dict):
                continue
            app = client.get("app")
            profiles[variant] = None
            if isinstance(app, str) and _is_name(app):
                pfile = str(folder / "apps" / f"{app}.yaml")
                if not Path(pfile).is_file():
                    self.add(doc.at(("clients", variant, "app"), f"unknown app profile {app!r}"))
                else:
                    profiles[variant] = self.profile(pfile)[0]
            build = client.get("build")
            if isinstance(build, str) and build:
                self.ref(doc, ("clients", variant, "build"), folder / build)

        self.sessions(doc, clients, profiles)
        self.expectations(doc, clients)
        valid = all(self._profiles[p.path][1] for p in profiles.values() if p is not None)
        if len(self.problems) != before or not valid:
            return None
        return _build(doc, profiles)

    def ref(self, doc: _Doc, key: KeyPath, target: Path) -> None:
        """A file named by the scenario must exist and be a YAML mapping."""
        if not target.is_file():
            self.add(doc.at(key, f"file not found: {target}"))
        else:
            self.read(str(target))

    def sessions(self, doc: _Doc, clients: dict[Any, Any], profiles: dict[Any, Any]) -> None:
        sessions = doc.data.get("sessions")
        names: dict[str, int] = {}
        for i, session in _items(sessions):
            if not isinstance(session, dict):
                continue
            name = session.get("name")
            if isinstance(name, str):
                if name in names:
                    self.add(
                        doc.at(
                            ("sessions", i, "name"),
                            f"duplicate session name {name!r} (first at line {names[name]})",
                        )
                    )
                else:
                    names[name] = doc.yaml.line(("sessions", i, "name"))
            for j, step in _items(session.get("steps")):
                if isinstance(step, dict):
                    self.step(doc, ("sessions", i, "steps", j), step, clients, profiles)

    def step(
        self,
        doc: _Doc,
        at: KeyPath,
        step: dict[Any, Any],
        clients: dict[Any, Any],
        profiles: dict[Any, Any],
    ) -> None:
        variant, action = step.get("variant"), step.get("action")
        params = {k: v for k, v in step.items() if k not in ("variant", "action")}
        known = ", ".join(str(v) for v in clients) or "none"
        if isinstance(variant, str) and variant not in clients:
            self.add(doc.at((*at, "variant"), f"unknown variant {variant!r} (clients: {known})"))
        for key in VARIANT_PARAMS:
            value = params.get(key)
            if isinstance(value, str) and value not in clients:
                self.add(doc.at((*at, key), f"unknown variant {value!r} (clients: {known})"))
        for key, value in params.items():
            if not isinstance(value, str):
                continue
            try:
                names = placeholders(value)
            except ValueError as e:
                self.add(doc.at((*at, key), f"bad placeholder syntax: {e}"))
                continue
            for name in sorted(set(names) - BASE_PLACEHOLDERS):
                self.add(
                    doc.at(
                        (*at, key),
                        f"unknown placeholder {{{name}}} "
                        f"(available: {', '.join(sorted(BASE_PLACEHOLDERS))})",
                    )
                )

        profile = profiles.get(variant) if isinstance(variant, str) else None
        actions = profile.data.get("actions") if profile is not None else None
        if not isinstance(actions, dict) or not isinstance(action, str):
            return
        app = profile.data.get("app") if profile is not None else None
        if action not in actions:
            self.add(
                doc.at(
                    (*at, "action"),
                    f"unknown action {action!r} for app {app!r} "
                    f"(has: {', '.join(str(a) for a in actions)})",
                )
            )
            return
        available = set(BASE_PLACEHOLDERS) | {str(k) for k in params}
        available |= {
            f"{k}_user"
            for k, v in params.items()
            if k in VARIANT_PARAMS or (isinstance(v, str) and v in clients)
        }
        needed: set[str] = set()
        for s in actions[action] if isinstance(actions[action], list) else []:
            for text in _strings(s):
                try:
                    needed.update(placeholders(text))
                except ValueError:
                    pass  # reported in the app profile
        for name in sorted(needed - available):
            self.add(
                doc.at(
                    (*at, "action"),
                    f"action {action!r} of app {app!r} needs "
                    f"{{{name}}}, which this step does not provide",
                )
            )

    def expectations(self, doc: _Doc, clients: dict[Any, Any]) -> None:
        ids: dict[str, int] = {}
        known = ", ".join(str(v) for v in clients) or "none"
        for i, exp in _items(doc.data.get("expectations")):
            if not isinstance(exp, dict):
                continue
            refs: list[tuple[KeyPath, Any]] = [(("expectations", i, "variant"),
                                                exp.get("variant"))]
            chat = exp.get("chat")
            if isinstance(chat, dict):
                refs += [(("expectations", i, "chat", k), chat.get(k)) for k in ("from", "to")]
            for key, variant in refs:
                if isinstance(variant, str) and variant not in clients:
                    self.add(doc.at(key, f"unknown variant {variant!r} (clients: {known})"))
            kinds = [k for k in EXPECTATION_KINDS if k in exp]
            for kind in kinds:
                value = exp[kind]
                for j, place in enumerate(value if isinstance(value, list) else [value]):
                    network = place.get("network") if isinstance(place, dict) else None
                    if isinstance(network, str):
                        try:
                            ipaddress.ip_network(network, strict=False)
                        except ValueError:
                            bad: KeyPath = ("expectations", i, kind,
                                            *((j,) if isinstance(value, list) else ()),
                                            "network")
                            self.add(doc.at(bad, f"not a network: {network!r}"))
            eid = exp.get("id")
            at: KeyPath = ("expectations", i, "id") if "id" in exp else ("expectations", i)
            if eid is None:
                if len(kinds) != 1:
                    continue
                variant = exp.get("variant") or (chat or {}).get("from") or "?"
                eid = default_expectation_id(str(variant), kinds[0], exp[kinds[0]],
                                             chat if isinstance(chat, dict) else None)
            if not isinstance(eid, str):
                continue
            if eid in ids:
                self.add(doc.at(at, f"duplicate expectation id {eid!r} (first at line {ids[eid]})"))
            else:
                ids[eid] = doc.yaml.line(at)


# -- public ------------------------------------------------------------------------------
def check_files(paths: Iterable[str]) -> list[Problem]:
    """Every problem in the given files (folders: their *.yaml files) and the files they name,
    sorted by file and line. An empty list means all are valid."""
    checker = _Checker()
    for file in expand(paths):
        checker.file(file)
    return _sorted(checker.problems)


def expand(paths: Iterable[str]) -> list[str]:
    """``paths`` with each folder replaced by the YAML files under it, in name order."""
    out: list[str] = []
    for p in paths:
        if Path(p).is_dir():
            out.extend(str(f) for f in sorted(Path(p).rglob("*.y*ml")) if f.is_file())
        else:
            out.append(p)
    return out


def load_scenario(path: str | Path) -> Scenario:
    """Load a valid scenario; raises ScenarioError (a `ScenarioProblems`) listing every
    problem in it and in the files it names."""
    checker = _Checker()
    doc = checker.read(str(path))
    scenario = checker.scenario(doc) if doc is not None else None
    if scenario is None or checker.problems:
        problems = _sorted(checker.problems)
        raise ScenarioProblems(problems or [Problem(str(path), None, "", "invalid scenario")])
    return scenario


def load_app_profile(path: str | Path) -> AppProfile:
    """Load a valid app profile; raises ScenarioError listing its problems."""
    checker = _Checker()
    doc, valid = checker.profile(str(path))
    if doc is None or not valid:
        raise ScenarioProblems(_sorted(checker.problems))
    return _build_profile(doc)


# -- helpers -----------------------------------------------------------------------------
def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(dict.fromkeys(problems), key=Problem.sort_key)


def _kind(data: dict[Any, Any]) -> str:
    if "scenario" in data or "clients" in data:
        return "scenario"
    if "app" in data:
        return "app"
    if "internet" in data or "build" in data:
        return "data"
    return "scenario"


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _items(value: Any) -> Iterator[tuple[int, Any]]:
    return enumerate(value) if isinstance(value, list) else iter(())


def _is_name(text: str) -> bool:
    return re.fullmatch(NAME_PATTERN, text) is not None


def _strings(step: Any) -> Iterator[str]:
    if isinstance(step, dict):
        for value in step.values():
            if isinstance(value, str):
                yield value
            elif isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))


def _check_profile(doc: _Doc, add: Any) -> None:
    """Checks beyond the schema: name matches file, placeholder syntax."""
    data = doc.data
    app = data.get("app")
    stem = Path(doc.file).stem
    if isinstance(app, str) and app != stem:
        add(doc.at(("app",), f"app name {app!r} does not match the file name {stem + '.yaml'!r}"))
    for i, text in _items(data.get("launch")):
        if isinstance(text, str):
            _check_syntax(doc, ("launch", i), text, add, BASE_PLACEHOLDERS)
    actions = data.get("actions")
    for name, steps in actions.items() if isinstance(actions, dict) else ():
        for j, step in _items(steps):
            for key, value in step.items() if isinstance(step, dict) else ():
                for text in _strings({key: value}):
                    _check_syntax(doc, ("actions", name, j, key), text, add, None)


def _check_syntax(
    doc: _Doc, at: KeyPath, text: str, add: Any, allowed: frozenset[str] | None
) -> None:
    try:
        names = placeholders(text)
    except ValueError as e:
        add(doc.at(at, f"bad placeholder syntax in {text!r}: {e}"))
        return
    for name in names:
        if not name.isidentifier() or name != name.lower():
            add(doc.at(at, f"bad placeholder {{{name}}}: expected a lower-case name"))
        elif allowed is not None and name not in allowed:
            add(
                doc.at(
                    at, f"unknown placeholder {{{name}}} (available: {', '.join(sorted(allowed))})"
                )
            )


def _build_profile(doc: _Doc) -> AppProfile:
    d = doc.data
    return AppProfile(
        name=d["app"],
        path=doc.path,
        description=d.get("description", ""),
        images_dir=doc.path.parent / d.get("images", d["app"]),
        launch=list(d["launch"]),
        actions={k: [dict(s) for s in v] for k, v in d["actions"].items()},
    )


def _build(doc: _Doc, profiles: dict[str, _Doc | None]) -> Scenario:
    d, folder = doc.data, doc.path.parent
    built: dict[Path, AppProfile] = {}
    clients: dict[str, Client] = {}
    for variant, c in d["clients"].items():
        pdoc = profiles[variant]
        assert pdoc is not None
        app = built.setdefault(pdoc.path, _build_profile(pdoc))
        clients[variant] = Client(
            variant=variant,
            app=app,
            build_path=(folder / c["build"]).resolve() if "build" in c else None,
            user=c["account"]["user"],
            password_env=c["account"].get("password_env"),
            vm=dict(c["vm"]) if "vm" in c else None,
        )
    sessions = [
        Session(
            name=s["name"],
            parallel=bool(s.get("parallel", False)),
            steps=[
                Step(
                    variant=st["variant"],
                    action=st["action"],
                    params={k: v for k, v in st.items() if k not in ("variant", "action")},
                    line=doc.yaml.line(("sessions", i, "steps", j)),
                )
                for j, st in enumerate(s["steps"])
            ],
        )
        for i, s in enumerate(d["sessions"])
    ]
    expectations = []
    for i, e in enumerate(d.get("expectations", [])):
        kind = next(k for k in EXPECTATION_KINDS if k in e)
        value = e[kind]
        places = [dict(p) for p in value] if isinstance(value, list) else \
            [dict(value)] if isinstance(value, dict) else []
        chat = {k: str(v) for k, v in e["chat"].items()} if "chat" in e else None
        variant = e.get("variant") or (chat or {}).get("from", "")
        expectations.append(
            Expectation(
                id=e.get("id") or default_expectation_id(variant, kind, value, chat),
                variant=variant,
                kind=kind,
                place=places[0] if len(places) == 1 else {},
                description=e.get("description", ""),
                line=doc.yaml.line(("expectations", i)),
                places=places,
                chat=chat,
                min_strength=str(e.get("min_strength", "")),
            )
        )
    internet = _get(d, "lab", "internet")
    return Scenario(
        name=d["scenario"],
        path=doc.path,
        description=str(d.get("description", "")).strip(),
        provider=d["provider"],
        internet_path=(folder / internet).resolve() if internet else None,
        clients=clients,
        sessions=sessions,
        expectations=expectations,
        sha256=hashlib.sha256(doc.raw).hexdigest(),
        nightly=bool(d.get("nightly", False)),
        vagrant=dict(d["vagrant"]) if "vagrant" in d else None,
    )


# -- schema errors -> problems -----------------------------------------------------------
_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str | int | float):
        return repr(value)
    return f"a {type(value).__name__}"


def _schema_problems(doc: _Doc, schema: dict[str, Any]) -> list[Problem]:
    validator = jsonschema.Draft202012Validator(schema)
    found: list[tuple[KeyPath, str, str]] = []  # path, validator, message
    for error in validator.iter_errors(doc.data):
        found.extend(_explain(error))
    typed = {path for path, kind, _ in found if kind == "type"}
    return [
        doc.at(path, message)
        for path, kind, message in found
        if kind == "type" or path not in typed
    ]


def _explain(error: jsonschema.ValidationError) -> list[tuple[KeyPath, str, str]]:
    path: KeyPath = tuple(error.absolute_path)
    kind = str(error.validator)
    inst: Any = error.instance
    value: Any = error.validator_value
    sub: Any = error.schema
    got = _describe(inst)
    if "propertyNames" in error.relative_schema_path:
        what = sub.get("description", "a valid name") if isinstance(sub, dict) else "a name"
        return [((*path, inst), "name", f"invalid name {inst!r}: expected {what}")]
    if kind == "required":
        missing = [k for k in value if isinstance(inst, dict) and k not in inst]
        provider = inst.get("provider") if isinstance(inst, dict) else None
        why = f" (provider is {provider})" if "then" in error.schema_path else ""
        return [(path, kind, f"missing required key {k!r}{why}") for k in missing]
    if kind == "additionalProperties" and isinstance(inst, dict):
        props = sub.get("properties", {}) if isinstance(sub, dict) else {}
        return [((*path, k), kind, f"unknown key {k!r}") for k in inst if k not in props]
    if kind == "oneOf":
        return _one_of(error, path, got)
    if kind == "type":
        types = [value] if isinstance(value, str) else list(value)
        hint = ""
        if isinstance(inst, bool) and "string" in types:
            hint = " (quote it: YAML reads yes/no/on/off/true/false as booleans)"
        expected = " or ".join(_TYPES.get(t, t) for t in types)
        return [(path, kind, f"expected {expected}, got {got}{hint}")]
    if kind == "enum":
        if len(value) > 12 and isinstance(sub, dict) and "description" in sub:
            return [(path, kind, f"expected {sub['description']}, got {got}")]
        return [(path, kind, f"expected one of {', '.join(map(str, value))}, got {got}")]
    if kind == "const":
        return [(path, kind, f"expected {value!r}, got {got}")]
    if kind == "pattern":
        what = sub.get("description") if isinstance(sub, dict) else None
        return [(path, kind, f"expected {what or 'text matching ' + value}, got {got}")]
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
        return [(path, kind, f"expected a number {op[kind]} {value}, got {got}")]
    if kind == "minLength":
        return [(path, kind, "expected a non-empty string")]
    if kind in ("minItems", "maxItems"):
        lo, hi = sub.get("minItems"), sub.get("maxItems")
        n = len(inst) if isinstance(inst, list) else 0
        want = (
            f"exactly {lo}"
            if lo == hi
            else (f"at least {lo}" if kind == "minItems" else f"at most {hi}")
        )
        return [(path, kind, f"expected {want} item(s), got {n}")]
    if kind == "minProperties":
        return [(path, kind, f"expected at least {value} entry, got none")]
    return [(path, kind, error.message)]


def _one_of(
    error: jsonschema.ValidationError, path: KeyPath, got: str
) -> list[tuple[KeyPath, str, str]]:
    branches: Any = error.validator_value
    inst: Any = error.instance
    keys = [b.get("required", [None])[0] if isinstance(b, dict) else None for b in branches]
    if None in keys:  # alternatives by type, e.g. a string or a list
        types = [_TYPES.get(str(b.get("type")), "something else") for b in branches]
        return [(path, "type", f"expected {' or '.join(types)}, got {got}")]
    if not isinstance(inst, dict):
        return []  # the enclosing schema's type error says it
    present = [k for k in keys if k in inst]
    choices = ", ".join(str(k) for k in keys)
    if not present:
        return [(path, "oneOf", f"expected one of the keys {choices}")]
    if len(present) > 1:
        return [
            (
                path,
                "oneOf",
                f"expected only one of the keys {choices}, got "
                f"{' and '.join(str(k) for k in present)}",
            )
        ]
    index = keys.index(present[0])
    out: list[tuple[KeyPath, str, str]] = []
    for sub in error.context or []:
        if sub.relative_schema_path and sub.relative_schema_path[0] == index:
            out.extend(_explain(sub))
    return out
