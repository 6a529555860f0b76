"""Schema errors (jsonschema) explained in the words of the scenario language."""

from __future__ import annotations

from typing import Any

import jsonschema

from testbed.scenario._problem import KeyPath

_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}


def describe(value: Any) -> str:
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


def schema_errors(data: Any, schema: dict[str, Any]) -> list[tuple[KeyPath, str]]:
    """Every way ``data`` breaks ``schema``, as (key path, message), in words a scenario
    author reads; a wrong type hides the other complaints about the same key."""
    validator = jsonschema.Draft202012Validator(schema)
    found: list[tuple[KeyPath, str, str]] = []  # path, validator, message
    for error in validator.iter_errors(data):
        found.extend(_explain(error))
    typed = {path for path, kind, _ in found if kind == "type"}
    return [(path, message) for path, kind, message in found if kind == "type" or path not in typed]


def _explain(error: jsonschema.ValidationError) -> list[tuple[KeyPath, str, str]]:
    path: KeyPath = tuple(error.absolute_path)
    kind = str(error.validator)
    inst: Any = error.instance
    value: Any = error.validator_value
    sub: Any = error.schema
    got = describe(inst)
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
