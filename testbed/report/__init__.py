"""The run report: one self-contained ``report.html`` per run, readable offline.

    build_report(run_dir) -> Path     write run_dir/report.html and return its path
    commands.add_parser(sub)          the ``testbed report RUN [--open]`` subcommand
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .render import build_report

__all__ = ["build_report"]


def __getattr__(name: str) -> Any:
    # The renderer (Jinja2, every section) loads on first use, not with the CLI's parser.
    if name == "build_report":
        from .render import build_report

        return build_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
