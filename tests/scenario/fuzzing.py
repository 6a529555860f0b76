"""Malformed scenarios, app profiles and lab data files, made by mutating the shipped ones, and
a harness that feeds each to ``testbed validate`` and ``testbed run`` (on the in-tree fakes).

Each case is one file of a copy of ``scenarios/`` with new content; the harness says what a
user saw: ``ok`` (exit 0/1 with no traceback), ``rejected`` (exit 2, every line
``FILE:LINE: ...``), ``badline`` (exit 2 with a line that does not say where), or
``traceback`` (an exception escaped the CLI). Deterministic: a fixed seed.
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SEED_TREE = ROOT / "scenarios"

# target file (relative to scenarios/) -> the scenario that reads it
TARGETS = {
    "skype-2013-lab.yaml": "skype-2013-lab.yaml",
    "skype-2024-lab.yaml": "skype-2024-lab.yaml",
    "vagrant-linux-lab.yaml": "vagrant-linux-lab.yaml",
    "apps/refclient.yaml": "skype-2013-lab.yaml",
    "apps/refclient-zh.yaml": "skype-2013-lab.yaml",
    "apps/probe.yaml": "vagrant-linux-lab.yaml",
    "lab/internet-2013.yaml": "skype-2013-lab.yaml",
    "lab/internet-2024.yaml": "skype-2024-lab.yaml",
    "lab/builds/tom-zh.yaml": "skype-2013-lab.yaml",
    "lab/builds/skype-2024.yaml": "skype-2024-lab.yaml",
}

VALUES: list[Any] = [
    None, True, 0, -1, 10**30, 1e308, float("nan"), float("inf"), "", "x" * 100_000,
    "六四\u202e", "a\nb", "a\x00b", "\x1b[31m", "hello {user}", "{canary:d}",
    "{canary:>999999999}", "{password}", "{canary!r}", "{0}", "{}", "{a.b}", "{", "}",
    "/etc/shadow", "../../../etc/passwd", [], [1, "x"], {}, {"a": 1}, "certificate.pem",
    "198.51.100.300", "2001:db8::1", "8.8.8.8",
]

TEXT_EDITS = ("nul", "truncate", "control", "garbage", "digits", "timestamp", "binary",
              "deep", "tab")


@dataclass(frozen=True)
class Case:
    name: str
    target: str  # relative to the tree
    content: bytes
    entry: str  # the scenario that reads the target

    def __str__(self) -> str:
        return self.name


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _set(data: Any, path: tuple[Any, ...], value: Any, drop: bool = False) -> None:
    for part in path[:-1]:
        data = data[part]
    if drop:
        del data[path[-1]]
    else:
        data[path[-1]] = value


def _dump(data: Any) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10_000).encode()


def _text_edit(raw: bytes, how: str, rng: random.Random) -> bytes:
    lines = raw.split(b"\n")
    at = rng.randrange(len(lines))
    pos = rng.randrange(max(1, len(raw)))
    if how == "nul":
        return raw[:pos] + b"\x00" + raw[pos:]
    if how == "truncate":
        return raw[:pos]
    if how == "control":
        return raw[:pos] + bytes([rng.choice([1, 7, 8, 0x1b, 0x7f])]) + raw[pos:]
    if how == "garbage":
        lines[at] = rng.choice([b": : [", b"- {a: b", b"&x *y", b"? ? ?", b"'unclosed", b"\t- x"])
    elif how == "digits":
        lines.insert(at, b"zz_digits: " + b"7" * 5000)
    elif how == "timestamp":
        lines.insert(at, b"zz_time: 2020-13-45")
    elif how == "binary":
        lines.insert(at, b"zz_bin: !!binary '@@@'")
    elif how == "deep":
        lines.insert(at, b"zz_deep: " + b"[" * 3000 + b"]" * 3000)
    elif how == "tab":
        lines[at] = b"\t" + lines[at]
    return b"\n".join(lines)


def issue_cases() -> list[Case]:
    """The instances named in issue 11, each on its own."""
    out = []

    def edit(target: str, name: str, change: Any) -> None:
        data = yaml.safe_load((SEED_TREE / target).read_text(encoding="utf-8"))
        change(data)
        out.append(Case(f"issue:{name}", target, _dump(data), TARGETS[target]))

    inet = "lab/internet-2013.yaml"
    edit(inet, "countries-list", lambda d: d.update(countries=["CN", "GB"]))
    edit(inet, "special-no-address", lambda d: d["special"][0].pop("address"))
    edit(inet, "keywords-int", lambda d: d.update(keywords={"monitor": 5}))
    edit(inet, "tls-string", lambda d: d.update(tls="certificate.pem"))
    edit(inet, "server-name-newline", lambda d: d["servers"][3].update(name="a\nb.example"))
    edit(inet, "tls-outside", lambda d: d.update(tls={"cert": "/etc/shadow",
                                                    "key": "/etc/shadow"}))
    scen = "skype-2013-lab.yaml"
    for i, text in enumerate(["hello {user}", "{canary:d}", "{canary:>999999999}",
                              "{password}", "{canary!r}", "{0}"]):
        edit(scen, f"chat-text-{i}",
             lambda d, t=text: d["sessions"][5]["steps"][0].update(text=t))
    edit(scen, "build-etc-shadow", lambda d: d["clients"]["regular"].update(build="/etc/shadow"))
    edit(scen, "build-dotdot", lambda d: d["clients"]["regular"].update(
        build="../../../../../etc/passwd"))
    app = "apps/refclient.yaml"
    edit(app, "image-missing", lambda d: d["actions"]["about"][0].update(
        click_image="no-such.png"))
    edit(app, "image-etc", lambda d: d["actions"]["about"][0].update(
        click_image="/etc/shadow"))
    edit(app, "images-dir-dotdot", lambda d: d.update(images="../../.."))
    edit(app, "password-in-launch", lambda d: d["launch"].append("{password}"))
    edit(app, "password-in-press", lambda d: d["actions"]["about"].append(
        {"press": "{password}"}))
    edit(app, "password-not-secret", lambda d: d["actions"]["login"][3].pop("secret"))
    return out


def generated_cases(per_file: int = 40, seed: int = 11) -> list[Case]:
    """``per_file`` structural mutations and a text edit of each kind, for each target."""
    rng = random.Random(seed)
    out: list[Case] = []
    for target, entry in TARGETS.items():
        raw = (SEED_TREE / target).read_bytes()
        original = yaml.safe_load(raw)
        paths = list(_paths(original))
        for n in range(per_file):
            data = yaml.safe_load(raw)
            path = rng.choice(paths)
            if rng.random() < 0.2:
                _set(data, path, None, drop=True)
                what = "drop"
            else:
                value = rng.choice(VALUES)
                _set(data, path, value)
                what = f"set {value!r}"[:40]
            out.append(Case(f"{target}#{n}: {'.'.join(map(str, path))} {what}", target,
                            _dump(data), entry))
        for how in TEXT_EDITS:
            out.append(Case(f"{target}: text {how}", target, _text_edit(raw, how, rng), entry))
    return out


def all_cases(per_file: int = 40) -> list[Case]:
    return issue_cases() + generated_cases(per_file)


# -- the harness ---------------------------------------------------------------------------
WHERE = re.compile(r"^\S.*?:\d+: \S")


@dataclass(frozen=True)
class Outcome:
    command: str
    verdict: str  # ok, rejected, badline, traceback
    code: int | None
    detail: str


def cli_outcome(argv: list[str]) -> Outcome:
    """Run ``testbed ARGV`` in this process, as a user would see it."""
    from testbed import cli

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
    except BaseException as e:  # what the CLI let escape: a traceback for the user
        if isinstance(e, KeyboardInterrupt | SystemExit) and not isinstance(e, SystemExit):
            raise
        return Outcome(argv[0], "traceback", None,
                       "".join(traceback.format_exception(e))[-1500:])
    text = err.getvalue()
    if "Traceback" in text:
        return Outcome(argv[0], "traceback", code, text[-1500:])
    if code == 2:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        bad = [ln for ln in lines if not WHERE.match(ln)]
        if not lines or bad:
            return Outcome(argv[0], "badline", code, (bad or ["(nothing on stderr)"])[0][:300])
        return Outcome(argv[0], "rejected", code, "\n".join(ln[:300] for ln in lines[:20]))
    return Outcome(argv[0], "ok", code, text[-300:])


@contextlib.contextmanager
def fake_pools() -> Iterator[None]:
    """Every provider runs on the in-tree fakes while inside."""
    from testbed.provider import POOLS, Context, Gateway, PoolKind
    from testbed.provider.fakes import FakeGateway, FakePool

    def gateway(run: Path, internet: Any) -> Gateway:
        return FakeGateway(run, internet)

    def pool(ctx: Context, gw: Gateway) -> FakePool:
        return FakePool(gw)

    saved = dict(POOLS)
    for name in saved:
        POOLS[name] = PoolKind(make=pool, gateway=gateway)
    try:
        yield
    finally:
        POOLS.clear()
        POOLS.update(saved)


def try_case(case: Case, tree: Path, results: Path, run: bool = True) -> list[Outcome]:
    """Write ``case`` into ``tree`` (a copy of scenarios/), validate and run its scenario,
    then put the original file back."""
    target = tree / case.target
    original = target.read_bytes()
    target.write_bytes(case.content)
    try:
        entry = str(tree / case.entry)
        outs = [cli_outcome(["validate", entry, str(target)])]
        if run:
            with fake_pools():
                outs.append(cli_outcome(["run", entry, "--results", str(results)]))
        return outs
    finally:
        target.write_bytes(original)
