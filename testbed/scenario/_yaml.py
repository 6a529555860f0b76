"""Safe YAML loading that remembers the line of every key and list item."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from testbed.scenario._problem import KeyPath, Problem, dotted

_MERGE_TAG = "tag:yaml.org,2002:merge"


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
    loader = yaml.SafeLoader(text)
    doc = YamlDoc()
    try:
        node = loader.get_single_node()
        if node is None:
            doc.empty = True
            return doc
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
    finally:
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
