"""Load and check scenario files and app profiles, reporting every problem with file:line: key.

    load_scenario(path) -> Scenario            raises ScenarioError listing all problems
    check_files(paths)  -> list[Problem]       scenarios, app profiles, lab data, build profiles

Paths inside a scenario are relative to its folder; app profile NAME is ``apps/NAME.yaml``
beside the scenario. Problems in a referenced file are reported with that file's own path.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from testbed._errors import ScenarioError
from testbed.scenario._build import Doc, build_profile, build_scenario
from testbed.scenario._checks import control_problems, outside_message, plain_placeholders, within
from testbed.scenario._data import check_build, check_file_ref, check_internet
from testbed.scenario._explain import describe, schema_errors
from testbed.scenario._input import InputRefused, read_input
from testbed.scenario._problem import KeyPath, Problem
from testbed.scenario._profile import (
    BASE_PLACEHOLDERS,
    check_profile,
    launch_placeholders,
    missing_images,
)
from testbed.scenario._route import check_route
from testbed.scenario._trust import check_own_trust, check_start_profile
from testbed.scenario._yaml import load_yaml
from testbed.scenario.data_schema import build_schema, internet_schema
from testbed.scenario.model import (
    EXPECTATION_KINDS,
    AppProfile,
    Scenario,
    default_expectation_id,
    placeholders,
)
from testbed.scenario.schema import NAME_PATTERN, app_profile_schema, scenario_schema

PARAM_PLACEHOLDERS = frozenset({"canary"})  # what `run` fills in a scenario step's fields
VARIANT_PARAMS = ("to", "from")



class ScenarioProblems(ScenarioError):
    """A ScenarioError that carries its problems; the message has one problem per line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class _Checker:
    """Checks files, each at most once, collecting problems."""

    def __init__(self, allow_outside: Sequence[Path] = ()) -> None:
        self.problems: list[Problem] = []
        self._seen: set[Path] = set()
        self._profiles: dict[Path, tuple[Doc | None, bool]] = {}  # doc, valid
        self.allow_outside = [Path(p) for p in allow_outside]
        self.roots: list[Path] = []  # the tree references must stay in, then allowed paths

    def within(self, root: Path) -> list[Path]:
        return [root, *self.allow_outside]

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    # -- reading ---------------------------------------------------------------------------
    def read(self, file: str, report: bool = True) -> Doc | None:
        """Parse ``file`` to a mapping, or report why not (once per file) and return None."""
        path = Path(file)
        found: list[Problem] = []
        doc = None
        try:
            raw = read_input(path)
        except InputRefused as e:
            found.append(Problem(file, None, "", str(e)))
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
                        Problem(file, 1, "", f"expected a mapping, got {describe(yd.data)}")
                    )
                if isinstance(yd.data, dict):
                    doc = Doc(file, path.resolve(), raw, yd)
                    found.extend(doc.at(at, m) for at, m in control_problems(yd.data))
        key = path.resolve()
        if report and key not in self._seen:
            self.problems.extend(found)
        self._seen.add(key)
        return doc

    def schema(self, doc: Doc, schema: dict[str, Any]) -> None:
        for p in _schema_problems(doc, schema):
            self.add(p)

    # -- files by kind -------------------------------------------------------------------
    def file(self, file: str, root: Path | None = None) -> None:
        """Check one file given by the user, whatever its kind; references stay in ``root``
        (default: the file's folder)."""
        doc = self.read(file)
        if doc is None:
            return
        self.roots = self.within(root or Path(file).parent)
        kind = _kind(doc.data)
        if kind == "scenario":
            self.scenario(doc)  # rooted at its own folder, as `run` roots it
        elif kind == "app":
            self.profile(file, doc)
        else:
            self.data(doc, kind)

    def data(self, doc: Doc, kind: str, files: bool = True) -> None:
        """An internet data file or a build profile; ``files``: and the files it names."""
        if kind == "internet":
            self.schema(doc, internet_schema())
            check_internet(doc, self.roots, self.add, files)
        elif kind == "build":
            self.schema(doc, build_schema())
            check_build(doc, self.roots, self.add, files)

    def profile(self, file: str, doc: Doc | None = None) -> tuple[Doc | None, bool]:
        """Check an app profile once; returns (doc, valid)."""
        key = Path(file).resolve()
        if key in self._profiles:
            return self._profiles[key]
        if doc is None:
            doc = self.read(file)
        before = len(self.problems)
        if doc is not None:
            self.schema(doc, app_profile_schema())
            check_profile(doc, self.roots, self.add)
        result = (doc, doc is not None and len(self.problems) == before)
        self._profiles[key] = result
        return result

    def scenario(self, doc: Doc) -> Scenario | None:
        """Check a scenario; returns it when it (and every file it names) is valid. Files it
        names stay inside its folder or an allowed path."""
        before = len(self.problems)
        self.schema(doc, scenario_schema())
        data = doc.data
        folder = Path(doc.file).parent
        self.roots = self.within(folder)

        internet = _get(data, "lab", "internet")
        if isinstance(internet, str) and internet:
            self.ref(doc, ("lab", "internet"), internet, "internet")

        clients = data.get("clients")
        clients = clients if isinstance(clients, dict) else {}
        profiles: dict[Any, Doc | None] = {}
        if "route" in data:
            check_route(doc, ("route",), data["route"], self.add)
        for variant, client in clients.items():
            if not isinstance(client, dict):
                continue
            if "route" in client:
                check_route(doc, ("clients", variant, "route"), client["route"], self.add)
            app = client.get("app")
            profiles[variant] = None
            if isinstance(app, str) and _is_name(app):
                pfile = str(folder / "apps" / f"{app}.yaml")
                if not Path(pfile).is_file():
                    self.add(doc.at(("clients", variant, "app"), f"unknown app profile {app!r}"))
                else:
                    pdoc = profiles[variant] = self.profile(pfile)[0]
                    if data.get("provider") == "lab" and pdoc is not None:
                        missing_images(pdoc, self.add)  # vagrant: its pre-flight lists them
            build = client.get("build")
            if isinstance(build, str) and build:
                self.ref(doc, ("clients", variant, "build"), build, "build")
            check_start_profile(doc, variant, client.get("profile"), self.roots, self.add)
            installer = _get(client, "vm", "installer", "path")
            if isinstance(installer, str) and installer and not within(folder / installer,
                                                                        self.roots):
                self.add(doc.at(("clients", variant, "vm", "installer", "path"),
                                outside_message(installer, self.roots[0])))

        check_own_trust(doc, clients, profiles, self.add)
        self.sessions(doc, clients, profiles)
        self.expectations(doc, clients)
        valid = all(self._profiles[p.path][1] for p in profiles.values() if p is not None)
        if len(self.problems) != before or not valid:
            return None
        return build_scenario(doc, profiles)

    def ref(self, doc: Doc, key: KeyPath, value: str, kind: str) -> None:
        """A data file named by the scenario: inside the tree, a valid file of ``kind``."""
        target = check_file_ref(doc, key, value, self.roots, self.add)
        if target is None:
            return
        seen = target.resolve() in self._seen
        ref = self.read(str(target))
        if ref is None or seen:
            return
        if _kind(ref.data) != kind:
            self.add(ref.at((), f"expected {_KINDS[kind]} (named by {doc.file})"))
        else:
            self.data(ref, kind)

    def sessions(self, doc: Doc, clients: dict[Any, Any], profiles: dict[Any, Any]) -> None:
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
        doc: Doc,
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
                names = plain_placeholders(value)
            except ValueError as e:
                self.add(doc.at((*at, key), f"bad placeholder: {e}"))
                continue
            for name in sorted(set(names) - PARAM_PLACEHOLDERS):
                self.add(
                    doc.at(
                        (*at, key),
                        f"unknown placeholder {{{name}}} (a step's fields can use "
                        f"{', '.join('{' + n + '}' for n in sorted(PARAM_PLACEHOLDERS))} only)",
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
        launches: set[str] = set()
        for s in actions[action] if isinstance(actions[action], list) else []:
            for text in _strings(s):
                try:
                    needed.update(placeholders(text))
                except ValueError:
                    pass  # reported in the app profile
            if isinstance(s, dict) and s.get("run") == "launch" and profile is not None:
                launches = launch_placeholders(profile.data.get("launch"))
        for name in sorted((needed | launches) - available):
            where = " (in its launch command)" if name in launches - needed else ""
            self.add(
                doc.at(
                    (*at, "action"),
                    f"action {action!r} of app {app!r} needs "
                    f"{{{name}}}{where}, which this step does not provide",
                )
            )

    def expectations(self, doc: Doc, clients: dict[Any, Any]) -> None:
        ids: dict[str, int] = {}
        known = ", ".join(str(v) for v in clients) or "none"
        for i, exp in _items(doc.data.get("expectations")):
            if not isinstance(exp, dict):
                continue
            refs: list[tuple[KeyPath, Any]] = [(("expectations", i, "variant"),
                                                exp.get("variant"))]
            chat = exp.get("chat")
            for claim in ("chat", "call"):
                party = exp.get(claim)
                if isinstance(party, dict):
                    refs += [(("expectations", i, claim, k), party.get(k))
                             for k in ("from", "to")]
            if not isinstance(chat, dict) and isinstance(exp.get("call"), dict):
                chat = exp["call"]
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
def check_files(paths: Iterable[str], allow_outside: Sequence[Path] = ()) -> list[Problem]:
    """Every problem in the given files (folders: their *.yaml files) and the files they name,
    sorted by file and line. An empty list means all are valid. References stay inside the
    folder given (a file given alone: its scenario folder, see `_tree`) or ``allow_outside``."""
    checker = _Checker(allow_outside)
    for file, root in _expand_with_roots(paths):
        checker.file(file, root)
    return _sorted(checker.problems)


def _expand_with_roots(paths: Iterable[str]) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for p in paths:
        if Path(p).is_dir():
            out.extend((str(f), Path(p)) for f in sorted(Path(p).rglob("*.y*ml")) if f.is_file())
        else:
            out.append((p, _tree(Path(p))))
    return out


def _tree(file: Path) -> Path:
    """The scenario folder a file given alone belongs to: the nearest folder above it with an
    ``apps`` folder (``scenarios/`` for ``scenarios/lab/builds/x.yaml``), else its own."""
    for folder in list(file.parents)[:4]:
        if (folder / "apps").is_dir():
            return folder
    return file.parent


def expand(paths: Iterable[str]) -> list[str]:
    """``paths`` with each folder replaced by the YAML files under it, in name order."""
    return [file for file, _ in _expand_with_roots(paths)]


def load_scenario(path: str | Path, allow_outside: Sequence[Path] = ()) -> Scenario:
    """Load a valid scenario; raises ScenarioError (a `ScenarioProblems`) listing every
    problem in it and in the files it names. Those files stay inside the scenario's folder
    or one of ``allow_outside``."""
    checker = _Checker(allow_outside)
    doc = checker.read(str(path))
    scenario = checker.scenario(doc) if doc is not None else None
    if scenario is None or checker.problems:
        problems = _sorted(checker.problems)
        raise ScenarioProblems(problems or [Problem(str(path), None, "", "invalid scenario")])
    return scenario


def load_app_profile(path: str | Path) -> AppProfile:
    """Load a valid app profile; raises ScenarioError listing its problems."""
    checker = _Checker()
    checker.roots = [Path(path).parent]
    doc, valid = checker.profile(str(path))
    if doc is None or not valid:
        raise ScenarioProblems(_sorted(checker.problems))
    return build_profile(doc)


# -- helpers -----------------------------------------------------------------------------
def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(dict.fromkeys(problems), key=Problem.sort_key)


_KINDS = {"internet": "an internet data file (internet:, servers:)",
          "build": "a build profile (build:, product:, version:)"}


def load_data(path: str | Path, kind: str) -> dict[Any, Any]:
    """Check an internet data file (``kind`` "internet") or a build profile ("build");
    returns its content, or raises ScenarioError listing every problem. The files it names
    are `load_scenario`'s to check (a run's copy of it names files it does not hold)."""
    checker = _Checker()
    doc = checker.read(str(path))
    if doc is not None:
        if _kind(doc.data) != kind:
            checker.add(doc.at((), f"expected {_KINDS[kind]}"))
        else:
            checker.data(doc, kind, files=False)
    if checker.problems or doc is None:
        raise ScenarioProblems(_sorted(checker.problems))
    return doc.data


def _kind(data: dict[Any, Any]) -> str:
    if "scenario" in data or "clients" in data:
        return "scenario"
    if "app" in data:
        return "app"
    if "internet" in data or "servers" in data:
        return "internet"
    if "build" in data:
        return "build"
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


def _schema_problems(doc: Doc, schema: dict[str, Any]) -> list[Problem]:
    return [doc.at(path, message) for path, message in schema_errors(doc.data, schema)]
