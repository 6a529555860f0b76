"""How commands are registered (``testbed._subcommand``): every command has a description and a
handler; a handler's docstring is its command's description; a RUN argument is a path; a
command of commands asks for one of them."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import pytest

from testbed.cli import build_parser
from testbed.history import commands as history_commands


def _commands(p: argparse.ArgumentParser, path: tuple[str, ...] = ()
              ) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    out = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                out.append(((*path, name), child))
                out += _commands(child, (*path, name))
    return out


COMMANDS = _commands(build_parser())
LEAVES = [(path, p) for path, p in COMMANDS if not any(
    isinstance(a, argparse._SubParsersAction) for a in p._actions)]


@pytest.mark.parametrize(("path", "parser"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_command_has_a_handler(path: tuple[str, ...], parser: argparse.ArgumentParser):
    assert callable(parser.get_default("func")), f"testbed {' '.join(path)} has no handler"


FROM_DOCSTRING = [("diff",), ("history",), ("nightly",), ("schedule", "install"),
                  ("schedule", "remove")]


@pytest.mark.parametrize("path", FROM_DOCSTRING, ids=" ".join)
def test_a_handler_docstring_is_its_description(path: tuple[str, ...]):
    parser = dict(COMMANDS)[path]
    handler = parser.get_default("func")
    assert handler.__module__ == history_commands.__name__
    first = (inspect.getdoc(handler) or "").split("\n\n")[0]
    assert len(first) > 40, f"testbed {' '.join(path)}: its handler's docstring is too thin"
    assert parser.description == first


def test_the_developer_paragraph_stays_out_of_the_help():
    assert "BadInput" in (inspect.getdoc(history_commands.run_diff) or "")
    assert "BadInput" not in dict(COMMANDS)[("diff",)].format_help()


@pytest.mark.parametrize(("argv", "names"), [
    (["analyze", "results/s/r1"], ("run",)),
    (["report", "results/s/r1"], ("run",)),
    (["diff", "results/s/r1", "results/s/r2"], ("run_a", "run_b")),
])
def test_a_run_argument_is_a_path(argv: list[str], names: tuple[str, ...]):
    args = build_parser().parse_args(argv)
    assert all(isinstance(getattr(args, n), Path) for n in names)


@pytest.mark.parametrize("group", ["lab", "geo", "schedule"])
def test_a_command_of_commands_asks_for_one(group: str, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([group])
    assert e.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err
