"""Entry points a client can use to reach the DPG databases, as libpq connection parameters on 127.0.0.1."""
from __future__ import annotations

from dataclasses import dataclass

from .stacks import port
from .names import DB_NAME, DB_PASSWORD, DB_USER, ETCD_MEMBERS, PATRONI_NODES, RO_PASSWORD, RO_USER, SUPERUSER_PASSWORD




@dataclass(frozen=True)
class Endpoint:
    """A named way in (HAProxy, Traefik, PgBouncer, libpq multi-host, a node directly) and the stack it needs."""
    name: str
    stack: str
    host: str
    port: str                      # may be a comma list for libpq multi-host
    user: str = DB_USER
    password: str = DB_PASSWORD
    dbname: str = DB_NAME
    extra: tuple[tuple[str, str], ...] = ()

    def conninfo(self, connect_timeout: int = 2, **overrides: str) -> dict[str, str]:
        params = {"host": self.host, "port": self.port, "user": self.user, "password": self.password,
                  "dbname": self.dbname, "connect_timeout": str(connect_timeout),
                  "application_name": f"dpg-chaos:{self.name}", **dict(self.extra)}
        params.update(overrides)
        return params


def node_port(node: str) -> int:
    i = PATRONI_NODES.index(node) + 1
    return port(f"DPG_PORT_PATRONI_{i}")


def node_api_port(node: str) -> int:
    i = PATRONI_NODES.index(node) + 1
    return port(f"DPG_PORT_PATRONI_{i}_API")


def patroni_api(node: str) -> str:
    return f"http://127.0.0.1:{node_api_port(node)}"


def etcd_api(member: str) -> str:
    """An etcd member's client URL as published on 127.0.0.1 (v3 JSON gateway, /health)."""
    i = ETCD_MEMBERS.index(member) + 1
    return f"http://127.0.0.1:{port(f'DPG_PORT_ETCD_{i}')}"


def haproxy() -> Endpoint:
    return Endpoint("haproxy", "patroni", "127.0.0.1", str(port("DPG_PORT_HAPROXY_RW")))


def haproxy_ro() -> Endpoint:
    return Endpoint("haproxy-ro", "patroni", "127.0.0.1", str(port("DPG_PORT_HAPROXY_RO")),
                    user=RO_USER, password=RO_PASSWORD)


def traefik() -> Endpoint:
    return Endpoint("traefik", "traefik", "127.0.0.1", str(port("DPG_PORT_TRAEFIK_RW")))


def traefik_ro() -> Endpoint:
    return Endpoint("traefik-ro", "traefik", "127.0.0.1", str(port("DPG_PORT_TRAEFIK_RO")),
                    user=RO_USER, password=RO_PASSWORD)


def traefik_citus() -> Endpoint:
    return Endpoint("traefik-citus", "traefik", "127.0.0.1", str(port("DPG_PORT_TRAEFIK_CITUS")))


def pgbouncer() -> Endpoint:
    return Endpoint("pgbouncer", "pgbouncer", "127.0.0.1", str(port("DPG_PORT_PGBOUNCER")))


def multihost() -> Endpoint:
    """libpq multi-host: the client itself finds the read-write node (no router in the path)."""
    ports = ",".join(str(node_port(n)) for n in PATRONI_NODES)
    return Endpoint("multihost", "patroni", ",".join(["127.0.0.1"] * len(PATRONI_NODES)), ports,
                    extra=(("target_session_attrs", "read-write"),))


def node(name: str, *, superuser: bool = False) -> Endpoint:
    if superuser:
        return Endpoint(f"direct:{name}", "patroni", "127.0.0.1", str(node_port(name)), user="postgres",
                        password=SUPERUSER_PASSWORD)
    return Endpoint(f"direct:{name}", "patroni", "127.0.0.1", str(node_port(name)))


def vector() -> Endpoint:
    return Endpoint("vector", "vector", "127.0.0.1", str(port("DPG_PORT_VECTOR")))


def citus(node_name: str = "citus-coordinator") -> Endpoint:
    env = {"citus-coordinator": "DPG_PORT_CITUS_COORDINATOR", "citus-worker-1": "DPG_PORT_CITUS_WORKER_1",
           "citus-worker-2": "DPG_PORT_CITUS_WORKER_2"}[node_name]
    return Endpoint(node_name, "citus", "127.0.0.1", str(port(env)))


#: The entry points every failover scenario writes through.
def write_paths() -> list[Endpoint]:
    return [haproxy(), traefik(), pgbouncer(), multihost()]


def close_quietly(conn) -> None:
    """Close a connection that may be broken already (a fault's victim): an error on close tells nothing."""
    if conn is None:
        return
    try:
        conn.close()
    except Exception:  # noqa: BLE001
        pass
