"""One run → one self-contained ``report.html``.

The page is for a reader who was not there: a journalist putting the run next to the seed
article, an auditor re-checking a claim. It holds the verdicts with their evidence, the
seed-style endpoint table, the screenshots of every phase side by side, the chat paths, and the
provenance (capture statistics, TLS notes, GeoIP databases, tool versions, phase timings).

Here the run becomes a view model (:class:`Report`, typed values only, no markup); the Jinja2
templates in ``templates/`` write it as HTML with autoescaping, so every value from the run
(chat texts are user text) is escaped by the template engine, not by discipline. The page's
CSS and JavaScript (``static/``) and the SVG charts are inlined, screenshots are data URIs:
the page loads nothing from the network, and reads the same without its script.

What the page highlights (the endpoints in the study's places, named in the summary, the
legend, the filter and the alerts) comes from the scenario's expectations: see
:mod:`testbed.report.highlight`.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from testbed._cache import cache_dir
from testbed._errors import TestbedError
from testbed.run import files

from . import chats, endpoints, provenance, screenshots, summary
from .data import RunData, load_run
from .highlight import Highlight

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class Page:
    """The page around the sections: inlined style and script, provenance of the page."""

    css: Markup
    js: Markup
    meta: dict[str, str]  # machine-readable summary, in <script type="application/json">
    version: str
    generated: str
    path: str


@dataclass(frozen=True)
class Report:
    """Everything the templates show, one field per section."""

    page: Page
    header: summary.Header
    problems: summary.Problems
    verdicts: summary.Verdicts
    charts: endpoints.Charts
    endpoints: endpoints.EndpointTable
    screenshots: screenshots.Screenshots
    chats: chats.Chats
    capture: provenance.Capture
    actions: provenance.Actions
    provenance: provenance.Provenance


@functools.cache
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("testbed")
    except Exception:  # pragma: no cover - not installed
        return "?"


def static(name: str) -> Markup:
    """A file of ``static/``, trusted as it is (it is ours, not the run's)."""
    body = (resources.files("testbed.report") / "static" / name).read_text(encoding="utf-8")
    if "</" in body.replace("<\\/", ""):
        raise TestbedError(f"report static file {name} must not contain '</' (it is inlined)")
    return Markup(body)


def build_view(data: RunData) -> Report:
    """The view model of the report on ``data``."""
    highlight = Highlight.of(data)
    head = summary.header(data)
    page = Page(css=static("report.css"), js=static("report.js"),
                meta={"run": head.run_id, "result": head.label}, version=_version(),
                generated=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                path=str(data.path))
    return Report(page=page, header=head, problems=summary.problems(data),
                  verdicts=summary.verdicts(data),
                  charts=endpoints.charts_view(data, highlight),
                  endpoints=endpoints.endpoint_table(data, highlight),
                  screenshots=screenshots.screenshots(data),
                  chats=chats.chats(data, highlight), capture=provenance.capture(data),
                  actions=provenance.actions(data), provenance=provenance.provenance(data))


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between processes (compiling them costs ~0.1 s per process);
    Jinja checks each against its template's source, so an edited template is recompiled."""
    folder = cache_dir() / "jinja"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # no cache: the templates are compiled in every process
    return jinja2.FileSystemBytecodeCache(str(folder))


@functools.cache
def environment() -> jinja2.Environment:
    """The templates, with autoescaping on for every one of them (all are HTML or SVG)."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("testbed.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True,
                             bytecode_cache=_bytecode_cache())
    env.globals["files"] = files  # the run's file names, spelled once (testbed.run.files)
    return env


def warm() -> None:
    """Load now what a process's first report loads (templates, the package's version and
    files: ~15 ms): `testbed analyze` does it while the capture's scans run."""
    env = environment()
    for name in env.list_templates():
        env.get_template(name)
    _version()
    resources.files("testbed.report")


def render_html(data: RunData) -> str:
    """The whole page for ``data`` as one HTML string (nothing external)."""
    view = build_view(data)
    try:
        template = environment().get_template(TEMPLATE)
        return template.render({f.name: getattr(view, f.name) for f in fields(view)})
    except jinja2.TemplateError as err:
        raise TestbedError(f"report template: {err}") from err


def build_report(run_dir: Path, data: RunData | None = None, status: str | None = None) -> Path:
    """Write ``run_dir/report.html``: one self-contained page (inline CSS, SVG charts and
    screenshots as data URIs) describing the run, and return its path.

    Missing or damaged files (a crashed run) are reported on the page, never raised. Raises
    :class:`TestbedError` only when ``run_dir`` is not a directory or cannot be written.
    ``data`` is the run as already read by :func:`load_run`, if the caller has it; ``status``
    the run's status once the report is written (a run writes its report while it is still
    ``analyzing``, and records its final status after)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TestbedError(f"{run_dir}: not a run directory")
    data = data if data is not None else load_run(run_dir)
    if status is not None:
        data = dataclasses.replace(data, manifest=dataclasses.replace(data.manifest,
                                                                      status=status))
    html = render_html(data)
    out = run_dir / files.REPORT
    tmp = run_dir / f".report.html.{os.getpid()}.tmp"
    try:
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise TestbedError(f"{out}: cannot write the report: {err}") from err
    return out
