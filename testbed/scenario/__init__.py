"""The scenario language v1: YAML files, schema-validated, with problems located by file:line.

load_scenario(path) -> Scenario        raises ScenarioError listing every problem
load_app_profile(path) -> AppProfile
check_files(paths) -> list[Problem]    str(problem): "file:line: key: message"
scenario_schema() / app_profile_schema() -> JSON Schema (draft 2020-12) dicts
"""

from testbed.scenario._problem import Problem
from testbed.scenario.load import ScenarioProblems, check_files, load_app_profile, load_scenario
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
