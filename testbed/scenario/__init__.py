"""The scenario language v1: YAML files, schema-validated, with problems located by file:line.

load_scenario(path) -> Scenario        raises ScenarioError listing every problem
load_app_profile(path) -> AppProfile
check_files(paths) -> list[Problem]    str(problem): "file:line: key: message"
scenario_schema() / app_profile_schema() -> JSON Schema (draft 2020-12) dicts

The names load with their module on first use: a module that needs only the schema's
constants (``data_schema.LAB_BLOCKS``) does not load the validator (jsonschema, ~30 ms).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testbed.scenario._problem import Problem
    from testbed.scenario.load import (
        ScenarioProblems,
        check_files,
        load_app_profile,
        load_scenario,
    )
    from testbed.scenario.model import (
        AppProfile,
        Client,
        Expectation,
        Scenario,
        Session,
        Step,
        fill,
        placeholders,
    )
    from testbed.scenario.schema import app_profile_schema, scenario_schema

#: each public name -> the module that defines it
_HOME = {
    "Problem": "_problem",
    **dict.fromkeys(("ScenarioProblems", "check_files", "load_app_profile", "load_scenario"),
                    "load"),
    **dict.fromkeys(("AppProfile", "Client", "Expectation", "Scenario", "Session", "Step",
                     "fill", "placeholders"), "model"),
    **dict.fromkeys(("app_profile_schema", "scenario_schema"), "schema"),
}

__all__ = [
    "AppProfile",
    "Client",
    "Expectation",
    "Problem",
    "Scenario",
    "ScenarioProblems",
    "Session",
    "Step",
    "app_profile_schema",
    "check_files",
    "fill",
    "load_app_profile",
    "load_scenario",
    "placeholders",
    "scenario_schema",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)
