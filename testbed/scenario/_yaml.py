"""Safe YAML loading that remembers the line of every key and list item, within bounds.

Bounds, each refused with the line where it is crossed: nesting deeper than ``MAX_DEPTH``
(also through aliases), a document that expands (aliases counted at every use) to more than
``MAX_NODES`` values (a "billion laughs" bomb is refused before anything is built), an alias
inside the node it names, a value the constructor cannot make (a 5,000-digit number, the 45th
of a month), and infinite or NaN numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from testbed.scenario._problem import KeyPath, Problem, dotted

_MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_DEPTH = 64  # nesting levels; the shipped files use 5
MAX_NODES = 100_000  # values after alias expansion; the largest shipped file has ~900


class _Bounded(yaml.SafeLoader):
    """PyYAML's safe loader with a bounded composer and a constructor whose errors have marks."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, TypeError) as e:
            raise ConstructorError(None, None, f"cannot read this value: {e}",
                                   node.start_mark) from e

    def construct_yaml_float(self, node: Any) -> float:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise ConstructorError(None, None, "infinite or NaN numbers are not allowed",
                                   node.start_mark)
        return value


_Bounded.add_constructor("tag:yaml.org,2002:float", _Bounded.construct_yaml_float)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _measure(root: yaml.Node) -> None:
    """Refuse a node graph too big or too deep once aliases are expanded, or with a cycle.
    Iterative, each node once: a bomb is measured in microseconds, never expanded."""
    memo: dict[int, tuple[int, int]] = {}  # id -> (expanded values, depth)
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        nid = id(node)
        if closing:
            open_.discard(nid)
            kids = [memo[id(k)] for k in _children(node)]
            size = 1 + sum(k[0] for k in kids)
            depth = 1 + max((k[1] for k in kids), default=0)
            memo[nid] = (size, depth)
            if size > MAX_NODES:
                raise ConstructorError(None, None, f"expands to more than {MAX_NODES} values "
                                       "(aliases counted at each use)", node.start_mark)
            if depth > MAX_DEPTH:
                raise ConstructorError(None, None, f"nested deeper than {MAX_DEPTH} levels "
                                       "(through aliases)", node.start_mark)
            continue
        if nid in memo:
            continue
        open_.add(nid)
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) in open_:
                raise ConstructorError(None, None, "an alias refers to a node that contains "
                                       "it (a recursive structure)", kid.start_mark)
            if id(kid) not in memo:
                stack.append((kid, False))


@dataclass
class YamlDoc:
    """A loaded document. ``data`` is None for an empty document or a syntax error.

    ``lines`` maps a key path (``("clients", "tom-en", "app")``, ``("sessions", 2)``) to the
    1-based line of that key (or list item). ``problems`` holds syntax errors and duplicate keys.
    """

    data: Any = None
    lines: dict[KeyPath, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    empty: bool = False

    def line(self, path: KeyPath) -> int:
        """Line of ``path``, or of its nearest ancestor that exists in the file (1 for the root)."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return 1


def load_yaml(text: str, file: str) -> YamlDoc:
    """Parse ``text`` (the content of ``file``, named in problems) with PyYAML's safe loader."""
    doc = YamlDoc()
    loader = None
    try:
        loader = _Bounded(text)  # its reader checks every character here
        node = loader.get_single_node()
        if node is None:
            doc.empty = True
            return doc
        _measure(node)
        doc.data = loader.construct_document(node)
        _walk(loader, node, (), doc, file, set())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = e.problem or e.context or "invalid YAML"
        doc.data = None
        doc.problems.append(
            Problem(file, mark.line + 1 if mark else None, "", f"YAML syntax error: {what}")
        )
    except yaml.YAMLError as e:  # ReaderError: a character YAML does not allow
        line = None
        pos = getattr(e, "position", None)
        if isinstance(pos, int):
            line = text.count("\n", 0, pos) + 1
        doc.data = None
        doc.problems.append(Problem(file, line, "", f"YAML error: {e}".splitlines()[0]))
    except RecursionError:  # pragma: no cover - the bounds above come first
        doc.data = None
        doc.problems.append(Problem(file, 1, "", "nested too deeply to read"))
    finally:
        if loader is not None:
            loader.dispose()
    return doc


def _key(loader: yaml.SafeLoader, node: yaml.Node) -> object:
    if isinstance(node, yaml.ScalarNode):
        try:
            key = loader.construct_object(node)
            hash(key)
            return key
        except Exception:  # pragma: no cover - construct_document already accepted it
            return node.value
    return repr(node.value)


def _walk(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: KeyPath,
    doc: YamlDoc,
    file: str,
    open_: set[int],
) -> None:
    if id(node) in open_:  # a recursive alias
        return
    open_.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[object, int] = {}
        for knode, vnode in node.value:
            if knode.tag == _MERGE_TAG:
                continue
            key = _key(loader, knode)
            line = knode.start_mark.line + 1
            if key in first:
                doc.problems.append(
                    Problem(
                        file,
                        line,
                        dotted((*path, key)),
                        f"duplicate key {key!r} (first at line {first[key]}); the last one wins",
                    )
                )
            else:
                first[key] = line
            doc.lines[(*path, key)] = line
            _walk(loader, vnode, (*path, key), doc, file, open_)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            doc.lines[(*path, i)] = item.start_mark.line + 1
            _walk(loader, item, (*path, i), doc, file, open_)
    open_.discard(id(node))
