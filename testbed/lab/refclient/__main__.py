"""``python -m testbed.lab.refclient --build PROFILE.yaml``: start the reference client."""

from __future__ import annotations

import argparse
from pathlib import Path

from testbed.lab.refclient.app import App, main_log
from testbed.lab.refclient.network import BuildProfile


def main() -> None:
    p = argparse.ArgumentParser(prog="refclient", description=__doc__)
    p.add_argument("--build", required=True, type=Path, help="build profile (YAML)")
    args = p.parse_args()
    App(BuildProfile.load(args.build), main_log).run()


if __name__ == "__main__":
    main()
