"""Guests of one run from several pools on the one gateway: a scenario mixing providers.

A ``provider: vagrant`` scenario whose clients are not all VMs: each client with a ``vm:``
is a VM of the vagrant pool, each without one a guest of the embedded lab's pool, and all of
them sit behind the run's one gateway, captured and analysed together. A researcher with one
workstation puts the client under study in a VM (its real OS, its real installer) and its
peers — the chat partner, the control — in the lab, which costs a namespace, not gigabytes
of RAM and minutes of boot.

The pools share the guest network: each guest keeps the index of its client in the
scenario, from which every pool derives its address, so no two guests collide.
"""

from __future__ import annotations

from pathlib import Path

from testbed.provider.abstracts import GuestHandle, GuestPool


class MixedPool(GuestPool):
    """Routes each variant to its pool; prepares them in order, tears them down in reverse."""

    def __init__(self, pools: dict[str, GuestPool], route: dict[str, str]) -> None:
        missing = sorted(set(route.values()) - set(pools))
        if missing:
            raise ValueError(f"no pool {', '.join(missing)} for {sorted(route)}")
        self.pools, self.route = pools, route
        self.name = "+".join(pools)
        self.start_timeout = max(p.start_timeout for p in pools.values())
        self.concurrent = all(p.concurrent for p in pools.values())

    def pool_of(self, variant: str) -> GuestPool:
        return self.pools[self.route[variant]]

    def prepare(self) -> None:
        for pool in self.pools.values():
            pool.prepare()

    def start_guest(self, variant: str, index: int, trust: Path | None) -> GuestHandle:
        return self.pool_of(variant).start_guest(variant, index, trust)

    def teardown(self) -> None:
        """Every pool's teardown, each whatever the others did; the first error is raised
        once all have run."""
        first: BaseException | None = None
        for pool in reversed(list(self.pools.values())):
            try:
                pool.teardown()
            except Exception as e:  # raised below, after the others
                first = first or e
        if first is not None:
            raise first
