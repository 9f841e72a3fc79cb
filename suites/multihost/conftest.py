"""Fixtures of the multi-host suite: the hosts, which host holds what, the entry points that survive a host."""

from __future__ import annotations

import pytest

from topology import endpoints
from topology.inventory import current

from ..failover.conftest import cluster, experiment, synchronous_mode  # noqa: F401 - the failover suite's fixtures

BY_NAME = {"haproxy": endpoints.haproxy, "traefik": endpoints.traefik, "pgbouncer": endpoints.pgbouncer,
           "multihost": endpoints.multihost}  # fmt: skip


@pytest.fixture(autouse=True)
def _needs_hosts():
    inv = current()
    if inv.kind != "multihost":
        pytest.skip(f"needs the multi-host topology (pytest --hosts 3 ...); this run tests {inv.kind} {inv.name}")


def host_of(role: str) -> str:
    """The host (engine) a role's container runs on."""
    return current().roles[role].engine


def surviving(lost: set[str]) -> list[endpoints.Endpoint]:
    """The write entry points that keep a path while the `lost` hosts are down (topology.multihost placement)."""
    from topology.multihost import entry_points_surviving

    return [BY_NAME[name]() for name in entry_points_surviving(lost)]
