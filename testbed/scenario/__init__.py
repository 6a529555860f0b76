"""The scenario language v1: YAML files, schema-validated, with problems located by file:line.

load_scenario(path) -> Scenario        raises ScenarioError listing every problem
load_app_profile(path) -> AppProfile
check_files(paths) -> list[Problem]    str(problem): "file:line: key: message"
scenario_schema() / app_profile_schema() -> JSON Schema (draft 2020-12) dicts

The names load with their module on first use: a module that needs only the schema's
constants (``data_schema.LAB_BLOCKS``) does not load the validator (jsonschema, ~30 ms).
"""

# ruff: noqa: F401  (the names imported for the type checker only are the package's exports)
from __future__ import annotations

from typing import TYPE_CHECKING

from testbed._lazy import lazy_exports

if TYPE_CHECKING:  # the names, for the type checker (exported through `__all__`)
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

__all__, __getattr__ = lazy_exports(__name__, {
    "_problem": ("Problem",),
    "load": ("ScenarioProblems", "check_files", "load_app_profile", "load_scenario"),
    "model": ("AppProfile", "Client", "Expectation", "Scenario", "Session", "Step", "fill",
              "placeholders"),
    "schema": ("app_profile_schema", "scenario_schema"),
})
