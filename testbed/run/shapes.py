"""Checking the shape of JSON values as the run's records are read: each function returns the
value (or a default for a missing or null key) or raises :class:`Shape` saying where.

:class:`Record` (through :func:`fields_to_json` and :func:`fields_from_json`) derives a
record's JSON form from its dataclass fields, so that a record whose keys are its fields, in
order, declares them once."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self, TypeVar

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


#: the JSON scalar kinds a record's fields hold: the Python values a key may have, and their name
_SCALARS: dict[type, tuple[tuple[type, ...], str]] = {
    str: ((str,), "a string"), int: ((int,), "an integer"), float: ((int, float), "a number"),
    bool: ((bool,), "true or false")}


def scalar(d: Mapping[str, Any], key: str, kind: type[T], default: T = _MISSING) -> T:
    """``d[key]``, a ``kind`` (str, int, float or bool; a float may be written as an integer,
    and stays one); ``default`` when the key is missing or null, or :class:`Shape`."""
    found: T = _get(d, key, *_SCALARS[kind], default)
    return found


def optional(d: Mapping[str, Any], key: str, kind: type[T]) -> T | None:
    """Like :func:`scalar`, with None for a missing or null key."""
    found: T | None = _get(d, key, *_SCALARS[kind], None)
    return found


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


# -- records whose JSON keys are their fields -------------------------------------------------
Parse = Callable[[Mapping[str, Any], str], Any]
_CONTAINERS: dict[Any, Parse] = {
    tuple[str, ...]: texts, tuple[dict[str, Any], ...]: objects, dict[str, Any]: mapping,
    dict[str, str]: text_map}


def _json_value(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def fields_to_json(record: Any) -> dict[str, Any]:
    """Every field of a dataclass ``record``, in declaration order, under its own name; None
    stays (``null``), tuples are lists, records are their ``to_json()``."""
    return {f.name: _json_value(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _record(kind: Any, default: Any) -> Parse:
    def parse(d: Mapping[str, Any], key: str) -> Any:
        value = d.get(key)
        return default if value is None else within(key, kind.from_json, value)
    return parse


def _parser(hint: Any, default: Any) -> Parse:
    """How a field of type ``hint`` with ``default`` (``_MISSING``: none) is read."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _SCALARS:
        return lambda d, k: scalar(d, k, hint, default)
    if hint in _CONTAINERS:
        return _CONTAINERS[hint]
    if origin in (types.UnionType, typing.Union) and len(args) == 2 and args[1] is type(None):
        if args[0] in _SCALARS:
            return lambda d, k: optional(d, k, args[0])
        return _record(args[0], None)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return lambda d, k: records(d, k, args[0].from_json)
    if origin is dict and args[0] is str:
        return lambda d, k: record_map(d, k, args[1].from_json)
    if hasattr(hint, "from_json") and default is not _MISSING:
        return _record(hint, default)
    raise TypeError(f"no JSON reader for a field of type {hint!r}")


@functools.cache
def _parsers(cls: Any, defaults: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Parse], ...]:
    hints = typing.get_type_hints(cls)
    given = dict(defaults)
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else _MISSING
        out.append((f.name, _parser(hints[f.name], given.get(f.name, default))))
    return tuple(out)


def fields_from_json(cls: type[T], d: Mapping[str, Any], defaults: Mapping[str, Any] = {},
                     **given: Any) -> T:
    """``cls`` (a dataclass) read from ``d``: each field from its own key, by its type (a
    missing or null key takes the field's default, or ``defaults[key]`` where the file may
    lack a key the record requires); ``given`` are fields the caller read itself. Keys that
    are not fields are ignored."""
    record: Any = cls  # a class is hashable: its readers are derived once
    values = {name: parse(d, name) for name, parse in _parsers(record, tuple(defaults.items()))
              if name not in given}
    return cls(**values, **given)


def other_keys(cls: Any, d: Mapping[str, Any], but: str) -> dict[str, Any]:
    """The keys of ``d`` that are no field of ``cls`` (the field ``but`` keeps them)."""
    known = {f.name for f in dataclasses.fields(cls)} - {but}
    return {k: v for k, v in d.items() if k not in known}


class Record:
    """Base of a frozen dataclass written as its fields, in order, and read back by their
    types (see :func:`fields_from_json`); a subclass overrides ``to_json`` where its file
    differs, and :meth:`read_otherwise` for fields not read by their type."""

    json_what: ClassVar[str] = "a record"  # names a whole file's value in a shape error
    json_defaults: ClassVar[Mapping[str, Any]] = {}  # for required fields older files lack

    def to_json(self) -> dict[str, Any]:
        return fields_to_json(self)

    @classmethod
    def from_json(cls, value: Any) -> Self:
        d = obj(value, cls.json_what)
        return fields_from_json(cls, d, cls.json_defaults, **cls.read_otherwise(d))

    @classmethod
    def read_otherwise(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        """Fields read from ``d`` otherwise than by their type: none here."""
        return {}
