"""Names and labels every part of the project agrees on: containers, stacks, the network, ports.

One place, so that faults, health gates and the reaper never guess a container name.
"""
from __future__ import annotations

import os

#: Label put on every container, network and volume the project creates; `.ci/run`, `topology down`
#: and `python -m chaos heal` find leftovers through it.
MANAGED_LABEL = "io.dpg-chaos.managed"
STACK_LABEL = "io.dpg-chaos.stack"
#: Label on images: sha256 of the image recipe (Dockerfile + context) so unchanged images are not rebuilt.
RECIPE_LABEL = "io.dpg-chaos.recipe"

NETWORK = os.environ.get("DPG_NETWORK", "dpg-unified-network")
SUBNET = os.environ.get("DPG_SUBNET", "172.25.0.0/16")
PROJECT_PREFIX = "dpg"
CONTAINER_PREFIX = "dpg-"


def container(service: str) -> str:
    """Container name of a compose service (`patroni-1` -> `dpg-patroni-1`)."""
    return CONTAINER_PREFIX + service


PATRONI_NODES = ("patroni-1", "patroni-2", "patroni-3")
ETCD_MEMBERS = ("etcd-1", "etcd-2", "etcd-3")
CITUS_NODES = ("citus-coordinator", "citus-worker-1", "citus-worker-2")

DB_NAME = "distributed_postgres_cluster"
DB_USER = "dpg_cluster"
DB_PASSWORD = os.environ.get("DPG_DB_PASSWORD", "dpg_cluster_pw")
RO_USER = "readonly_user"
RO_PASSWORD = os.environ.get("DPG_RO_PASSWORD", "readonly_pw")
SUPERUSER_PASSWORD = os.environ.get("DPG_SUPERUSER_PASSWORD", "postgres_pw")
