"""Entry points a client can use to reach the DPG databases, as libpq connection parameters.

Every address comes from the deployment under test (`topology.inventory.current()`): 127.0.0.1 and the
DPG_PORT_* ports for the embedded topology, the inventory's host:port entries under --target.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from .inventory import HostPort, current


@dataclass(frozen=True)
class Endpoint:
    """A named way in (HAProxy, Traefik, PgBouncer, libpq multi-host, a node directly) and the stack it needs."""

    name: str
    stack: str
    host: str
    port: str  # may be a comma list for libpq multi-host
    user: str = ""
    password: str = field(default="", repr=False)  # never in a repr, a log line or an attachment
    dbname: str = ""
    extra: tuple[tuple[str, str], ...] = ()

    def conninfo(self, connect_timeout: int = 2, **overrides: str) -> dict[str, str]:
        params = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
            "connect_timeout": str(connect_timeout),
            "application_name": f"dpg-chaos:{self.name}",
            **dict(self.extra),
        }
        params.update(overrides)
        return params


def _ep(name: str, stack: str, hp: HostPort | str, *, login: str = "app", **kw) -> Endpoint:
    inv = current()
    cred = inv.login(login)
    host, port = (hp.host, str(hp.port)) if isinstance(hp, HostPort) else hp.split(":", 1)
    return Endpoint(name, stack, host, port, cred.user, cred.password.reveal(), inv.database, **kw)


def node_port(node: str) -> int:
    return current().member(node).postgres.port


def patroni_api(node: str) -> str:
    """A Patroni member's REST API base URL as the harness reaches it."""
    return current().member(node).api


def etcd_api(member: str) -> str:
    """An etcd member's client URL as the harness reaches it (v3 JSON gateway, /health)."""
    return current().etcd_member(member).client_url


def haproxy() -> Endpoint:
    return _ep("haproxy", "patroni", current().endpoint("haproxy_rw"))


def haproxy_ro() -> Endpoint:
    return _ep("haproxy-ro", "patroni", current().endpoint("haproxy_ro"), login="readonly")


def traefik() -> Endpoint:
    return _ep("traefik", "traefik", current().endpoint("traefik_rw"))


def traefik_ro() -> Endpoint:
    return _ep("traefik-ro", "traefik", current().endpoint("traefik_ro"), login="readonly")


def traefik_citus() -> Endpoint:
    return _ep("traefik-citus", "traefik", current().endpoint("traefik_citus"))


def pgbouncer() -> Endpoint:
    return _ep("pgbouncer", "pgbouncer", current().endpoint("pgbouncer"))


def multihost() -> Endpoint:
    """libpq multi-host: the client itself finds the read-write node (no router in the path)."""
    members = current().patroni
    return _ep(
        "multihost",
        "patroni",
        ",".join(m.postgres.host for m in members) + ":" + ",".join(str(m.postgres.port) for m in members),
        extra=(("target_session_attrs", "read-write"),),
    )


def node(name: str, *, superuser: bool = False) -> Endpoint:
    return _ep(f"direct:{name}", "patroni", current().member(name).postgres, login="superuser" if superuser else "app")


def vector() -> Endpoint:
    return _ep("vector", "vector", current().endpoint("vector"))


def citus(node_name: str = "citus-coordinator") -> Endpoint:
    inv = current()
    if node_name == "citus-coordinator":
        return _ep(node_name, "citus", inv.endpoint("citus_coordinator"))
    workers = dict(zip(("citus-worker-1", "citus-worker-2"), inv.citus_workers, strict=False))
    return _ep(node_name, "citus", workers[node_name])


def url(key: str) -> str:
    """An HTTP endpoint of the deployment (haproxy_stats, traefik_api, prometheus, toxiproxy, grafana)."""
    return current().url(key)


def hostport(key: str) -> HostPort:
    """A TCP endpoint of the deployment by inventory key (redis, pgbouncer, ...)."""
    return current().endpoint(key)


#: The entry points every failover scenario writes through.
def write_paths() -> list[Endpoint]:
    return [haproxy(), traefik(), pgbouncer(), multihost()]


def close_quietly(conn) -> None:
    """Close a connection that may be broken already (a fault's victim): an error on close tells nothing."""
    if conn is None:
        return
    with contextlib.suppress(Exception):
        conn.close()
