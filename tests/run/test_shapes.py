"""Records read and written from their dataclass fields (fields_to_json, fields_from_json)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from testbed.run.shapes import Shape, fields_from_json, fields_to_json


@dataclass(frozen=True)
class Inner:
    name: str
    size: int | None = None

    def to_json(self) -> dict[str, Any]:
        return fields_to_json(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Inner:
        return fields_from_json(cls, d)


@dataclass(frozen=True)
class Outer:
    id: str
    kind: str
    time: float = 0.0
    ok: bool = False
    ratio: float | None = None
    tags: tuple[str, ...] = ()
    items: tuple[Inner, ...] = ()
    by_name: dict[str, Inner] = field(default_factory=dict)
    one: Inner | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def test_fields_are_written_in_order_with_nulls_kept() -> None:
    o = Outer("a", "b", tags=("x",), items=(Inner("i", 3),), by_name={"k": Inner("k")})
    assert list(fields_to_json(o)) == ["id", "kind", "time", "ok", "ratio", "tags", "items",
                                       "by_name", "one", "extra"]
    assert fields_to_json(o) == {
        "id": "a", "kind": "b", "time": 0.0, "ok": False, "ratio": None, "tags": ["x"],
        "items": [{"name": "i", "size": 3}], "by_name": {"k": {"name": "k", "size": None}},
        "one": None, "extra": {}}
    assert fields_from_json(Outer, fields_to_json(o)) == o


def test_missing_keys_default_and_unknown_keys_are_ignored() -> None:
    got = fields_from_json(Outer, {"id": "a", "newer": 1}, {"kind": "?"})
    assert got == Outer("a", "?")
    assert fields_from_json(Outer, {"id": "a", "kind": "b"}, kind="given").kind == "given"
    with pytest.raises(Shape, match="'kind' is missing"):
        fields_from_json(Outer, {"id": "a"})


@pytest.mark.parametrize(("data", "message"), [
    ({"time": "soon"}, "'time' should be a number, not str"),
    ({"ok": 1}, "'ok' should be true or false, not int"),
    ({"tags": ["x", 2]}, r"tags\[1\] should be a string"),
    ({"items": [{"name": 1}]}, r"items\[0\]: 'name' should be a string"),
    ({"by_name": {"k": {}}}, r"by_name\['k'\]: 'name' is missing"),
    ({"one": {"name": "n", "size": 1.5}}, "one: 'size' should be an integer"),
])
def test_a_wrong_type_names_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(Shape, match=message):
        fields_from_json(Outer, {"id": "a", "kind": "b", **data})


def test_a_field_type_without_a_reader_is_refused() -> None:
    @dataclass(frozen=True)
    class Odd:
        when: complex

    with pytest.raises(TypeError, match="no JSON reader"):
        fields_from_json(Odd, {})
