"""The Windows guests' PowerShell, checked without Windows: parsed with tree-sitter's
PowerShell grammar (from PyPI), and what the per-run set-up sends them. No Windows box runs
here; these are the checks that can be made without one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from testbed.vagrant import guestsetup

ts = pytest.importorskip("tree_sitter")
tsp = pytest.importorskip("tree_sitter_powershell")
ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "vms" / "provision" / "windows").glob("*.ps1"))
PARSER = ts.Parser(ts.Language(tsp.language()))


def errors(source: str) -> list[str]:
    """Where the parser found syntax errors, as 'line N: text'."""
    tree = PARSER.parse(source.encode())
    found: list[str] = []

    def walk(node) -> None:  # type: ignore[no-untyped-def]
        if node.is_error or node.is_missing:
            line = node.start_point[0]
            found.append(f"line {line + 1}: {source.splitlines()[line].strip()}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return found


def test_the_parser_does_find_errors():
    assert errors('if ($x { "unclosed"\n')
    assert not errors('if ($x) { "closed" }\n')


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_every_provisioning_script_parses(path):
    assert not errors(path.read_text()), errors(path.read_text())


def here_strings(path: Path) -> list[str]:
    return re.findall(r"@'\n(.*?)\n'@", path.read_text(), flags=re.S)


@pytest.mark.parametrize("path", [p for p in SCRIPTS if here_strings(p)], ids=lambda p: p.name)
def test_the_scripts_they_write_parse_too(path):
    for body in here_strings(path):
        assert not errors(body), errors(body)


def test_the_session_launcher_starts_the_agent_by_its_launcher():
    body = "\n".join(here_strings(ROOT / "vms" / "provision" / "windows" / "agent.ps1"))
    assert "python -m testbed.agent.launch C:\\testbed\\agent.env" in body
    assert "-AtLogOn" in (ROOT / "vms" / "provision" / "windows" / "agent.ps1").read_text()


def test_the_per_run_commands_parse_and_carry_no_secret():
    command = guestsetup.windows_setup_command(1700000000)
    assert guestsetup.WINDOWS_SETUP in command and "-Now 1700000000" in command
    wait = guestsetup.windows_wait_command(30)
    inner = wait.split('-Command "', 1)[1].rsplit('"', 1)[0]
    assert not errors(inner), errors(inner)
    assert guestsetup.WINDOWS_CUE in inner and "60" in inner


@pytest.mark.parametrize("pems", [0, 1, 2])
def test_run_setup_ps1_reads_what_it_is_sent(tmp_path, pems):
    """run-setup.ps1 splits its stdin at the line '--': CAs before, KEY=VALUE after."""
    cas = []
    for i in range(pems):
        cas.append(tmp_path / f"{i}.pem")
        cas[-1].write_text(f"-----BEGIN CERTIFICATE-----\nX{i}\n-----END CERTIFICATE-----\n")
    data = guestsetup.windows_setup_input(cas, {"TESTBED_AGENT_TOKEN": "t", "AGENT_LISTEN": "h:1"})
    lines = data.decode().splitlines()
    cut = lines.index("--")
    assert sum("BEGIN CERTIFICATE" in x for x in lines[:cut]) == pems
    assert lines[cut + 1:] == ["TESTBED_AGENT_TOKEN=t", "AGENT_LISTEN=h:1"]
    script = (ROOT / "vms" / "provision" / "windows" / "run-setup.ps1").read_text()
    assert '[Array]::IndexOf($lines, "--")' in script and "Move-Item -Force" in script
