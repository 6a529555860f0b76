"""Checking the shape of JSON values as the run's records are read: each function returns the
value (or a default for a missing or null key) or raises :class:`Shape` saying where."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
_MISSING: Any = object()


class Shape(ValueError):
    """A JSON value of the wrong shape; the message says where (``places['1.2.3.4']: 'asn'``)."""


def obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Shape(f"{where}: expected an object, not {type(value).__name__}")
    return value


def _get(d: Mapping[str, Any], key: str, kinds: tuple[type, ...], what: str,
         default: Any) -> Any:
    value = d.get(key)
    if value is None:
        if default is _MISSING:
            raise Shape(f"{key!r} is missing")
        return default
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise Shape(f"{key!r} should be {what}, not {type(value).__name__}: {value!r:.60}")
    return value


def text(d: Mapping[str, Any], key: str, default: str = _MISSING) -> str:
    return str(_get(d, key, (str,), "a string", default))


def opt_text(d: Mapping[str, Any], key: str) -> str | None:
    value = _get(d, key, (str,), "a string", None)
    return None if value is None else str(value)


def number(d: Mapping[str, Any], key: str, default: float = _MISSING) -> float:
    value: float = _get(d, key, (int, float), "a number", default)
    return value


def opt_number(d: Mapping[str, Any], key: str) -> float | None:
    value: float | None = _get(d, key, (int, float), "a number", None)
    return value


def integer(d: Mapping[str, Any], key: str, default: int = _MISSING) -> int:
    return int(_get(d, key, (int,), "an integer", default))


def opt_integer(d: Mapping[str, Any], key: str) -> int | None:
    value = _get(d, key, (int,), "an integer", None)
    return None if value is None else int(value)


def flag(d: Mapping[str, Any], key: str, default: bool = False) -> bool:
    return bool(_get(d, key, (bool,), "true or false", default))


def texts(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    items = _get(d, key, (list,), "a list", [])
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise Shape(f"{key}[{i}] should be a string, not {type(item).__name__}")
    return tuple(items)


def mapping(d: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A JSON object whose keys the caller does not fix (parameters, tool versions, ...)."""
    return dict(_get(d, key, (dict,), "an object", {}))


def text_map(d: Mapping[str, Any], key: str) -> dict[str, str]:
    out = mapping(d, key)
    for k, v in out.items():
        if not isinstance(v, str):
            raise Shape(f"{key}[{k!r}] should be a string, not {type(v).__name__}")
    return out


def objects(d: Mapping[str, Any], key: str) -> tuple[dict[str, Any], ...]:
    """A list of JSON objects kept as they are (free-form records such as evidence items)."""
    items = _get(d, key, (list,), "a list", [])
    return tuple(dict(obj(item, f"{key}[{i}]")) for i, item in enumerate(items))


def records(d: Mapping[str, Any], key: str,
            parse: Callable[[Mapping[str, Any]], T]) -> tuple[T, ...]:
    """A list of objects, each parsed; a bad item is reported with its index."""
    items = _get(d, key, (list,), "a list", [])
    return tuple(within(f"{key}[{i}]", parse, item) for i, item in enumerate(items))


def record_map(d: Mapping[str, Any], key: str,
               parse: Callable[[Mapping[str, Any]], T]) -> dict[str, T]:
    """An object of objects (``places``: address → placement), each parsed."""
    return {k: within(f"{key}[{k!r}]", parse, v) for k, v in mapping(d, key).items()}


def within(where: str, parse: Callable[[Mapping[str, Any]], T], value: Any) -> T:
    """``parse(value)``, with ``where`` prefixed to any shape error."""
    try:
        return parse(obj(value, where))
    except Shape as e:
        msg = str(e)
        raise Shape(msg if msg.startswith(where) else f"{where}: {msg}") from e
