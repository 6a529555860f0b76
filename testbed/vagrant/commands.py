"""``testbed vagrant status|destroy SCENARIO``: the machines a vagrant scenario keeps between
runs (in ``<results>/.vagrant/<scenario>``), and removing them with all libvirt holds for them.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_status(args: argparse.Namespace) -> int:
    from testbed.scenario import load_scenario
    from testbed.vagrant import libvirt
    from testbed.vagrant.machines import Names
    from testbed.vagrant.provider import machines_dir

    scenario = load_scenario(args.scenario)
    project = machines_dir(args.results, scenario)
    doms = libvirt.domains(Names.of(project))
    if not doms:
        print(f"no machines of {scenario.name} (folder {project})")
        return 0
    print(f"machines of {scenario.name} (folder {project})")
    for dom in doms:
        snaps = libvirt.virsh("snapshot-list", dom, "--name", check=False).split()
        state = libvirt.virsh("domstate", dom, check=False).strip()
        print(f"  {dom}: {state}; snapshots: {', '.join(snaps) or 'none'}")
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    from testbed.scenario import load_scenario
    from testbed.vagrant.provider import destroy, machines_dir

    scenario = load_scenario(args.scenario)
    project = machines_dir(args.results, scenario)
    gone = destroy(scenario, project)
    print("\n".join(f"removed {g}" for g in gone) if gone else f"nothing to remove ({project})")
    return 0


def add_parser(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
               default_results: Path) -> None:
    """``testbed vagrant …``; ``default_results`` is the CLI's results folder."""
    v = sub.add_parser("vagrant", help="the machines of vagrant scenarios (kept between runs)")
    v_sub = v.add_subparsers(dest="vagrant_command", required=True, metavar="COMMAND")
    for name, func, text in (
            ("status", cmd_status, "list the scenario's machines and their snapshots"),
            ("destroy", cmd_destroy, "remove the scenario's machines, snapshots, disks, "
             "storage pool and management network")):
        c = v_sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        c.add_argument("scenario", type=Path, help="the scenario file (provider: vagrant)")
        c.add_argument("--results", type=Path, default=default_results,
                       help="the results folder its runs used (default: %(default)s)")
        c.set_defaults(func=func)
