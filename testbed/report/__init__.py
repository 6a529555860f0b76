"""The run report: one self-contained ``report.html`` per run, readable offline.

    build_report(run_dir) -> Path     write run_dir/report.html and return its path
    commands.add_parser(sub)          the ``testbed report RUN [--open]`` subcommand

The renderer (Jinja2, every section) loads on first use, not with the CLI's parser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from testbed._lazy import lazy_exports

if TYPE_CHECKING:  # the name, for the type checker (exported through `__all__`)
    from .render import build_report as build_report

__all__, __getattr__ = lazy_exports(__name__, {"render": ("build_report",)})
