"""The management link's filter: it carries the agent's port, host → guest, and nothing else.

Two nftables tables, so that neither side alone is trusted:

* in each guest's namespace, ``testbed_mgmt``: ``mgmt0`` accepts new TCP connections to the
  agent's port from the host's end of the link and their replies; everything else in or out
  of ``mgmt0`` is dropped, and the guest forwards nothing. (The guest cannot change it: its
  programs run without CAP_NET_ADMIN, see ``testbed.lab.sandbox``.)
* in the host's namespace, ``tb<tag>_mgmt`` (one per run, named with the run's prefix): from
  the run's management links the host takes only replies of connections it opened to an
  agent's port, and forwards nothing to or from them — so a guest that adds a route, or
  forges a source, reaches no listener of the host and no other interface.

The host table is removed at teardown, and ``sweep`` removes the table of a run that was
killed. Tables in namespaces go with their namespace.
"""

from __future__ import annotations

import re

from testbed._errors import LabError
from testbed.lab.shell import sh

GUEST_TABLE = "testbed_mgmt"
GUEST_LINK = "mgmt0"
PRIORITY = -10  # before the usual filter chains (priority 0) of whoever else filters here
HOST_TABLE = re.compile(r"^tb([0-9a-f]{4})_mgmt$")


def nft(*argv: str, ns: str | None = None, input: str | None = None, check: bool = True) -> str:
    """Run ``nft`` (in namespace ``ns``); a failure becomes a LabError quoting stderr."""
    return sh("nft", *argv, ns=ns, input=input, check=check)


def host_table(tag: str) -> str:
    return f"tb{tag}_mgmt"


def link_pattern(tag: str) -> str:
    """Every management link of run ``tag`` on the host (``tb<tag>m<index>``)."""
    return f"tb{tag}m*"


def guest_rules(host_ip: str, guest_ip: str, port: int) -> str:
    """The guest namespace's table (an ``nft -f`` script)."""
    return f"""table inet {GUEST_TABLE} {{
  chain input {{
    type filter hook input priority {PRIORITY}; policy accept;
    iifname "{GUEST_LINK}" ip saddr {host_ip} ip daddr {guest_ip} tcp dport {port} \
ct state new,established accept
    iifname "{GUEST_LINK}" counter drop
  }}
  chain output {{
    type filter hook output priority {PRIORITY}; policy accept;
    oifname "{GUEST_LINK}" ip saddr {guest_ip} ip daddr {host_ip} tcp sport {port} \
ct state established accept
    oifname "{GUEST_LINK}" counter drop
  }}
  chain forward {{
    type filter hook forward priority {PRIORITY}; policy drop;
  }}
}}
"""


def host_rules(tag: str, port: int) -> str:
    """The host's table for run ``tag`` (an ``nft -f`` script); per-link address checks are
    added by ``allow_link``."""
    links = link_pattern(tag)
    return f"""table inet {host_table(tag)} {{
  set agents {{ type ipv4_addr; }}
  chain input {{
    type filter hook input priority {PRIORITY}; policy accept;
    iifname "{links}" ip saddr @agents tcp sport {port} ct state established accept
    iifname "{links}" counter drop
  }}
  chain forward {{
    type filter hook forward priority {PRIORITY}; policy accept;
    iifname "{links}" counter drop
    oifname "{links}" counter drop
  }}
  chain output {{
    type filter hook output priority {PRIORITY}; policy accept;
    oifname "{links}" ip daddr @agents tcp dport {port} ct state new,established accept
    oifname "{links}" counter drop
  }}
}}
"""


def guard_guest(ns: str, host_ip: str, guest_ip: str, port: int) -> None:
    """Filter ``mgmt0`` inside guest namespace ``ns`` (before anything runs there)."""
    nft("-f", "-", ns=ns, input=guest_rules(host_ip, guest_ip, port))


def guard_host(tag: str, port: int) -> None:
    """Create run ``tag``'s host table (idempotent: an existing one is replaced)."""
    drop_host(tag)
    nft("-f", "-", input=host_rules(tag, port))


def allow_agent(tag: str, guest_ip: str) -> None:
    """Let the host talk to the agent at ``guest_ip`` (a guest's end of its link)."""
    nft("add", "element", "inet", host_table(tag), "agents", f"{{ {guest_ip} }}")


def drop_host(tag: str) -> bool:
    """Remove run ``tag``'s host table; whether there was one."""
    if host_table(tag) not in tables():
        return False
    nft("delete", "table", "inet", host_table(tag), check=False)
    return True


def tables() -> list[str]:
    """The names of the host's inet tables."""
    try:
        out = nft("list", "tables", "inet", check=False)
    except LabError:  # no nftables on this machine: no table of ours either
        return []
    return [line.split()[-1] for line in out.splitlines() if line.startswith("table inet ")]


def tags() -> set[str]:
    """The run tags that have a host table now."""
    return {m.group(1) for m in map(HOST_TABLE.match, tables()) if m}


def sweep(tag: str | None = None) -> list[str]:
    """Remove the host tables of one run (``tag``) or of every run; returns what went."""
    removed = []
    for name in tables():
        m = HOST_TABLE.match(name)
        if m and (tag is None or m.group(1) == tag):
            nft("delete", "table", "inet", name, check=False)
            removed.append(f"nftables table inet {name}")
    return removed


def dropped(ns: str | None, table: str) -> int:
    """Packets ``table`` dropped so far (in guest namespace ``ns``, or the host's with None):
    what a test reads to see that the filter, not luck, stopped a probe."""
    out = nft("list", "table", "inet", table, ns=ns, check=False)
    return sum(int(n) for n in re.findall(r"counter packets (\d+) bytes \d+ drop", out))
