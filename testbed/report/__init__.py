"""The run report: one self-contained ``report.html`` per run, readable offline.

    build_report(run_dir) -> Path     write run_dir/report.html and return its path
    commands.add_parser(sub)          the ``testbed report RUN [--open]`` subcommand
"""

from __future__ import annotations

from .render import build_report

__all__ = ["build_report"]
