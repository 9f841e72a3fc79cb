"""Names and labels every part of the project agrees on: containers, members, the network, credentials, labels.

Member names, container names and logins come from the deployment under test (`topology.inventory.current()`):
the embedded topology's `dpg-patroni-1 ...` by default, a target's own names under `--target`. Module attributes
such as PATRONI_NODES are read from it when first imported (PEP 562), so `from topology.names import
PATRONI_NODES` keeps working and sees the target.
"""

from __future__ import annotations

import os
from typing import Any

#: Put at creation (compose `labels:`, `docker run --label`) on every container, network and volume the project
#: creates; `.ci/run`, `topology down` and `python -m chaos heal` find leftovers through it. Never set on an image:
#: a container inherits its image's labels, and an image must not make a container ours (topology.ownership).
MANAGED_LABEL = "io.dpg-chaos.managed"
STACK_LABEL = "io.dpg-chaos.stack"
#: The run (a `topology up`, a pytest session, a CI job) that created a container: DPG_RUN_ID, set at creation.
RUN_LABEL = "io.dpg-chaos.run"
#: Label on images: sha256 of the image recipe (Dockerfile + context) so unchanged images are not rebuilt.
RECIPE_LABEL = "io.dpg-chaos.recipe"
#: Label on images of ours (what `docker image prune --filter` may take); never read as container ownership.
IMAGE_LABEL = "io.dpg-chaos.image"

SUBNET = os.environ.get("DPG_SUBNET", "172.25.0.0/16")
PROJECT_PREFIX = "dpg"
CONTAINER_PREFIX = "dpg-"

#: Schema of the probe tables (writes, heartbeat): `probe` in the embedded topology (created at bootstrap); in
#: a target a schema of ours, created at the start of a run and dropped at its end (topology.probe_schema).
EMBEDDED_PROBE_SCHEMA = "probe"
TARGET_PROBE_SCHEMA = "dpg_chaos_probe"


def container(service: str) -> str:
    """Container name of a role (`patroni-1` -> `dpg-patroni-1` embedded, the target's own name under --target)."""
    from .inventory import current, engines

    if service in current().roles:
        return engines().name(service)
    if not current().rebuildable:  # only the embedded topology names containers dpg-<service> by itself
        from .errors import TopologyError

        raise TopologyError(f"inventory {current().name}: no container for role {service!r}")
    return CONTAINER_PREFIX + service


def probe_schema() -> str:
    from .inventory import current

    return TARGET_PROBE_SCHEMA if current().is_target else EMBEDDED_PROBE_SCHEMA


def _dynamic() -> dict[str, Any]:
    from .inventory import EMBEDDED_CITUS, current

    inv = current()
    app, ro, su = (inv.logins.get(k) for k in ("app", "readonly", "superuser"))
    return {
        "PATRONI_NODES": inv.patroni_names,
        "ETCD_MEMBERS": inv.etcd_names,
        "CITUS_NODES": EMBEDDED_CITUS,
        "NETWORK": inv.network or os.environ.get("DPG_NETWORK", "dpg-unified-network"),
        "DB_NAME": inv.database,
        "DB_USER": app.user if app else "dpg_cluster",
        "DB_PASSWORD": app.password.reveal() if app else "",
        "RO_USER": ro.user if ro else "readonly_user",
        "RO_PASSWORD": ro.password.reveal() if ro else "",
        "SUPERUSER_PASSWORD": su.password.reveal() if su else "",
    }


_DYNAMIC = (
    "PATRONI_NODES",
    "ETCD_MEMBERS",
    "CITUS_NODES",
    "NETWORK",
    "DB_NAME",
    "DB_USER",
    "DB_PASSWORD",
    "RO_USER",
    "RO_PASSWORD",
    "SUPERUSER_PASSWORD",
)


def __getattr__(name: str) -> Any:
    if name in _DYNAMIC:
        return _dynamic()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
