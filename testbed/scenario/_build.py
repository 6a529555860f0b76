"""Valid scenario and app profile files -> the frozen records of `testbed.scenario.model`.

Only called on files `testbed.scenario.load` found valid: no checking here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import testbed.scenario.model as m
from testbed.scenario._problem import KeyPath, Problem, dotted
from testbed.scenario._route import build_route
from testbed.scenario._yaml import YamlDoc


@dataclass
class Doc:
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



def build_profile(doc: Doc) -> m.AppProfile:
    d = doc.data
    return m.AppProfile(
        name=d["app"],
        path=doc.path,
        description=d.get("description", ""),
        images_dir=doc.path.parent / d.get("images", d["app"]),
        launch=list(d["launch"]),
        actions={k: [dict(s) for s in v] for k, v in d["actions"].items()},
        trust=d.get("trust", "system"),
        nss_db=d.get("nss_db"),
    )


def build_scenario(doc: Doc, profiles: dict[str, Doc | None]) -> m.Scenario:
    d, folder = doc.data, doc.path.parent
    built: dict[Path, m.AppProfile] = {}
    clients: dict[str, m.Client] = {}
    for variant, c in d["clients"].items():
        pdoc = profiles[variant]
        assert pdoc is not None
        app = built.setdefault(pdoc.path, build_profile(pdoc))
        clients[variant] = m.Client(
            variant=variant,
            app=app,
            build_path=(folder / c["build"]).resolve() if "build" in c else None,
            user=c["account"]["user"],
            password_env=c["account"].get("password_env"),
            vm=dict(c["vm"]) if "vm" in c else None,
            profile=(folder / c["profile"]).resolve() if "profile" in c else None,
            tls=c.get("tls", "intercept"),
            route=build_route(c["route"], folder, doc.yaml.line(("clients", variant, "route")))
            if "route" in c else None,
        )
    sessions = [
        m.Session(
            name=s["name"],
            parallel=bool(s.get("parallel", False)),
            steps=[
                m.Step(
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
        kind = next(k for k in m.EXPECTATION_KINDS if k in e)
        value = e[kind]
        places = [dict(p) for p in value] if isinstance(value, list) else \
            [dict(value)] if isinstance(value, dict) else []
        chat = {k: str(v) for k, v in e["chat"].items()} if "chat" in e else None
        call = {k: str(v) for k, v in e["call"].items()} if "call" in e else None
        variant = e.get("variant") or (chat or call or {}).get("from", "")
        expectations.append(
            m.Expectation(
                id=e.get("id") or m.default_expectation_id(variant, kind, value, chat or call),
                variant=variant,
                kind=kind,
                place=places[0] if len(places) == 1 else {},
                description=e.get("description", ""),
                line=doc.yaml.line(("expectations", i)),
                places=places,
                chat=chat,
                min_strength=str(e.get("min_strength", "")),
                tls=str(e.get("tls", "")),
                call=call,
                download=str(e.get("download", "")),
            )
        )
    internet = (d.get("lab") or {}).get("internet")
    return m.Scenario(
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
        route=build_route(d["route"], folder, doc.yaml.line(("route",))) if "route" in d
        else m.Route(),
    )
