"""Entry points the load can go through, by name, as libpq parameters on 127.0.0.1.

`direct` is the current Patroni leader's own port (no router, no pooler): the baseline every other layer is
compared with. Names are also what Locust users read from DPG_LOAD_TARGET.
"""

from __future__ import annotations

from topology import endpoints
from topology.endpoints import Endpoint
from topology.errors import TopologyError

#: The layers in table order: direct first, it is the baseline.
LAYERS = ("direct", "haproxy", "pgbouncer", "traefik", "citus")
#: Container(s) each layer adds on the path to PostgreSQL (for the CPU attribution).
LAYER_CONTAINERS = {
    "direct": (),
    "haproxy": ("dpg-haproxy",),
    "pgbouncer": ("dpg-pgbouncer", "dpg-haproxy"),
    "traefik": ("dpg-traefik", "dpg-haproxy"),
    "citus": (),
}


def leader() -> str:
    """The Patroni leader, asked from the REST API (the source of truth is etcd, which Patroni reports)."""
    from topology.patroni_api import PatroniAPI

    name = PatroniAPI.published(retries=2).leader()
    if not name:
        raise TopologyError("no Patroni leader right now: start the patroni stack (python -m topology up patroni)")
    return name


def endpoint(name: str) -> Endpoint:
    """The endpoint behind a layer name; `vector` is the vector DB (it has no router in front)."""
    if name == "direct":
        return endpoints.node(leader())
    makers = {
        "haproxy": endpoints.haproxy,
        "pgbouncer": endpoints.pgbouncer,
        "traefik": endpoints.traefik,
        "citus": endpoints.citus,
        "vector": endpoints.vector,
    }
    if name not in makers:
        raise TopologyError(f"unknown load target {name!r}; known: {', '.join((*LAYERS, 'vector'))}")
    return makers[name]()
