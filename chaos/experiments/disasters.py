"""Disasters for the DR drills: losses that do not heal by themselves (unlike chaos.faults), and the rebuild.

Each destroys containers AND their volumes, so only what the pgBackRest repository (or the surviving
PostgreSQL data, for etcd) holds can bring the cluster back. The repository host and HAProxy are spared.
"""

from __future__ import annotations

import contextlib

import docker
import docker.errors

from chaos.faults import FaultUnsupported, declared
from topology import compose
from topology.inventory import current
from topology.lifecycle import compose_env
from topology.names import ETCD_MEMBERS, MANAGED_LABEL, PATRONI_NODES, STACK_LABEL, container
from topology.stacks import STACKS


def _allowed() -> None:
    """A disaster is declared (`Disaster@...`) and never meets a deployment this project did not create."""
    inv = current()
    if inv.is_target:
        raise FaultUnsupported("disasters destroy containers and volumes: never done to a target (target mode)")
    if not inv.rebuildable:
        raise FaultUnsupported("disasters rebuild the single-host topology: not built for several hosts")
    declared.check_kind("Disaster")  # a pseudo kind: pytest_faults.PSEUDO_KINDS


def _destroy(client: docker.DockerClient, services: tuple[str, ...]) -> list[str]:
    """Remove the services' containers (SIGKILL) and their named data volumes (ours only)."""
    _allowed()
    removed = []
    for service in services:
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(container(service)).remove(force=True, v=True)
            removed.append(f"container {container(service)}")
    for v in client.volumes.list(filters={"label": [f"{MANAGED_LABEL}=true", f"{STACK_LABEL}=patroni"]}):
        if any(v.name.endswith(f"_{service}-data") for service in services):
            v.remove(force=True)
            removed.append(f"volume {v.name}")
    return removed


def destroy_patroni_cluster(client: docker.DockerClient) -> list[str]:
    """Total loss: every Patroni node and etcd member, with all their data (the DCS state included)."""
    return _destroy(client, PATRONI_NODES + ETCD_MEMBERS)


def wipe_etcd(client: docker.DockerClient) -> list[str]:
    """Lose the DCS: the three etcd members and their data; the Patroni nodes keep running."""
    return _destroy(client, ETCD_MEMBERS)


def rebuild_patroni(client: docker.DockerClient, services: tuple[str, ...] = (), **env: str) -> None:
    """`compose up -d` the Patroni stack (or some services) with extra variables, e.g. DPG_BOOTSTRAP_METHOD."""
    _allowed()
    stack = STACKS["patroni"]
    compose.run(stack, "up", "-d", *services, env={**compose_env(client, stack), **env})
