"""Health gates: one function per stack returning the problems it sees (empty list = healthy).

The same gates serve `topology up` (wait until green), the steady-state check before a fault, and the
verification after heal (CloudNativePG's AssertClusterIsReady). Each problem is a readable sentence.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import time
from collections.abc import Callable

import docker
import psycopg
import requests

from . import endpoints
from .inventory import current, engines
from .names import PATRONI_NODES
from .patroni import PatroniCluster
from .seed import VECTOR_ROWS
from .timeouts import TIMEOUTS
from .waiting import wait_for

EXPECTED_TCP_ROUTERS = ("patroni-primary", "patroni-replicas", "citus-coordinator")


def query_one(ep: endpoints.Endpoint, sql: str, *, timeout: int = 3):
    with psycopg.connect(**ep.conninfo(connect_timeout=timeout), autocommit=True) as conn:
        conn.execute(f"SET statement_timeout = {timeout * 1000}")
        return conn.execute(sql).fetchone()


def haproxy_backend(backend: str = "primary") -> dict[str, str]:
    """Server -> status (UP/DOWN/...) of an HAProxy backend, from the stats CSV."""
    text = requests.get(endpoints.url("haproxy_stats"), timeout=2).text.lstrip("# ")
    rows = csv.DictReader(io.StringIO(text))
    return {
        r["svname"]: r["status"] for r in rows if r["pxname"] == backend and r["svname"] not in ("FRONTEND", "BACKEND")
    }


def dcs_last_seen_problems(last_seen: dict[str, float | None], now: float, stale_after_s: float) -> list[str]:
    """The Patroni daemons whose last successful read of the DCS is older than `stale_after_s`."""
    return [
        f"Patroni on {node} has not read etcd for {now - seen:.0f} s (its dcs_last_seen): its daemon cannot "
        f"reach or refuses the DCS, whatever etcd's own health says"
        for node, seen in last_seen.items()
        if seen is not None and now - seen > stale_after_s
    ]


def dcs_view_problems(cluster: PatroniCluster) -> list[str]:
    """Each Patroni daemon's own view of etcd, not only etcd's health: a daemon can refuse members that etcdctl
    calls healthy (Patroni 4.0.7's StaleEtcdNode after an etcd re-created with the same token, docs/findings.md:
    CI 2026-12-05 ran 20 minutes of tests against it). /patroni's dcs_last_seen advances in every HA loop that
    read the DCS (every loop_wait = 1 s); older than ttl means the node has been blind longer than a leader may
    hold its lock. The check reads the host's clock against the nodes': one kernel here, NTP on a remote engine."""
    stale_after = float(os.environ.get("DPG_TTL", "20"))
    seen: dict[str, float | None] = {}
    problems = []
    for node in PATRONI_NODES:
        try:
            seen[node] = cluster.node_status(node).get("dcs_last_seen")
        except (requests.RequestException, ValueError) as e:
            problems.append(f"Patroni on {node}: GET /patroni unanswered ({type(e).__name__})")
    return problems + dcs_last_seen_problems(seen, time.time(), stale_after)


def patroni_problems(client: docker.DockerClient) -> list[str]:
    cluster = PatroniCluster(client)
    problems = []
    etcd = cluster.etcd_health()
    problems += [f"etcd member {m} unhealthy" for m, ok in etcd.items() if not ok]
    problems += dcs_view_problems(cluster)
    leader = cluster.leader_in_dcs()
    if not leader:
        return [*problems, "no leader key in etcd"]
    members = cluster.members()
    leaders = [m.name for m in members if m.is_leader]
    if leaders != [leader]:
        problems.append(f"REST leaders {leaders} != DCS leader {leader}")
    replicas = [m for m in members if not m.is_leader]
    if len(members) != len(PATRONI_NODES):
        problems.append(f"{len(members)} members registered, expected {len(PATRONI_NODES)}")
    for m in replicas:
        if m.state != "streaming":
            problems.append(f"replica {m.name} is {m.state}, not streaming")
        elif m.lag not in (0, None):
            problems.append(f"replica {m.name} lags {m.lag} bytes")
    backend = haproxy_backend("primary")
    up = [s for s, status in backend.items() if status.startswith("UP")]
    if up != [leader]:
        problems.append(f"HAProxy RW backend UP servers {up}, expected exactly [{leader}]")
    return problems


def pgbouncer_problems(client: docker.DockerClient) -> list[str]:
    (in_recovery,) = query_one(endpoints.pgbouncer(), "SELECT pg_is_in_recovery()")
    return ["PgBouncer does not reach the primary"] if in_recovery else []


def traefik_routers() -> list[dict]:
    return requests.get(endpoints.url("traefik_api") + "/api/tcp/routers", timeout=2).json()


def traefik_problems(client: docker.DockerClient) -> list[str]:
    names = {r.get("name", "").split("@")[0] for r in traefik_routers()}
    expected = () if current().is_target else EXPECTED_TCP_ROUTERS  # a target names its routers as it likes
    problems = [f"Traefik TCP router {r} missing from /api/tcp/routers" for r in expected if r not in names]
    try:  # a missing router must still be named when routing through it fails too
        (in_recovery,) = query_one(endpoints.traefik(), "SELECT pg_is_in_recovery()")
        if in_recovery:
            problems.append("Traefik 5500 does not reach the primary")
    except psycopg.Error as exc:
        problems.append(f"Traefik 5500 does not route: {type(exc).__name__}: {str(exc).strip()[:80]}")
    return problems


def vector_problems(client: docker.DockerClient) -> list[str]:
    if current().is_target:  # a target's vector DB holds its own data: answering is what the gate can ask
        query_one(endpoints.vector(), "SELECT 1")
        return []
    (n,) = query_one(endpoints.vector(), "SELECT count(*) FROM embeddings")
    return [] if n == VECTOR_ROWS else [f"vector DB holds {n} embeddings, expected {VECTOR_ROWS}"]


def redis_problems(client: docker.DockerClient) -> list[str]:
    hp = endpoints.hostport("redis")
    with socket.create_connection((hp.host, hp.port), timeout=2) as s:
        s.sendall(b"PING\r\n")
        reply = s.recv(64)
    return [] if reply.startswith(b"+PONG") else [f"Redis answered {reply!r} to PING"]


def toxiproxy_problems(client: docker.DockerClient) -> list[str]:
    r = requests.get(endpoints.url("toxiproxy") + "/version", timeout=2)
    return [] if r.ok else [f"fault proxy /version answered {r.status_code}"]


def monitoring_problems(client: docker.DockerClient) -> list[str]:
    targets = requests.get(endpoints.url("prometheus") + "/api/v1/targets", timeout=3).json()["data"]["activeTargets"]
    if not targets:
        return ["Prometheus has no active targets yet"]
    return [
        f"Prometheus target {t['labels'].get('job')}/{t['labels'].get('instance')} is {t['health']}"
        f" ({t.get('lastError', '')[:60]})"
        for t in targets
        if t["health"] != "up"
    ]


def citus_problems(client: docker.DockerClient) -> list[str]:
    """2 active workers, every node answering on its own port, every users shard placed (balanced), no
    coordinator -> worker route override left behind (pg_dist_poolinfo), and a multi-shard read that
    reaches both workers returns the seeded row count."""
    from .citus import WORKERS, CitusCluster, connect
    from .seed import CITUS_SHARDS, CITUS_USERS

    problems = []
    for node in WORKERS:
        try:
            with connect(node, statement_timeout_ms=3000, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            problems.append(f"{node} does not answer: {str(exc).strip().splitlines()[0][:80]}")
    (n,) = query_one(
        endpoints.citus(), "SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND groupid > 0"
    )
    if n != 2:
        problems.append(f"Citus sees {n} active workers, expected 2")
    cluster = CitusCluster()
    placed = cluster.placements()
    if sorted(placed) != sorted(WORKERS) or set(placed.values()) != {CITUS_SHARDS // len(WORKERS)}:
        problems.append(
            f"distributed.users placements {placed}, expected {CITUS_SHARDS // len(WORKERS)} "
            f"on each of {', '.join(WORKERS)}"
        )
    if cluster.poolinfo():
        problems.append(f"pg_dist_poolinfo overrides left: {cluster.poolinfo()}")
    (users,) = query_one(endpoints.citus(), "SELECT count(*) FROM distributed.users", timeout=10)
    if users != CITUS_USERS:
        problems.append(f"distributed.users holds {users} rows, expected {CITUS_USERS}")
    return problems


def grafana_problems(client: docker.DockerClient) -> list[str]:
    r = requests.get(endpoints.url("grafana") + "/api/health", timeout=2)
    return [] if r.ok else [f"Grafana /api/health answered {r.status_code}"]


GATES: dict[str, Callable[[docker.DockerClient], list[str]]] = {
    "patroni": patroni_problems,
    "pgbouncer": pgbouncer_problems,
    "traefik": traefik_problems,
    "vector": vector_problems,
    "redis": redis_problems,
    "toxiproxy": toxiproxy_problems,
    "monitoring": monitoring_problems,
    "citus": citus_problems,
    "grafana": grafana_problems,
}


def problems(client: docker.DockerClient, stack: str) -> list[str]:
    """The problems of one stack; a failing probe is itself a problem (never an exception)."""
    try:
        return GATES[stack](client)
    except Exception as exc:
        return [f"{stack}: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"]


def running_stacks(client: docker.DockerClient | None = None) -> list[str]:
    """The stacks there are to check: the running stacks of ours (embedded), or every stack a target describes."""
    if not current().rebuildable:  # containers on other engines, or not ours: what the inventory describes
        return [s for s in GATES if s in current().stacks()]
    from .names import STACK_LABEL
    from .ownership import managed_containers

    running = [c for c in managed_containers(client or engines().client()) if c.status == "running"]
    seen = {c.labels.get(STACK_LABEL) for c in running}
    return [s for s in GATES if s in seen]


def wait_healthy(client: docker.DockerClient, stacks: list[str] | None = None, *, within: float | None = None) -> None:
    """Block until every given stack (default: every running stack of ours) has no problems."""
    stacks = stacks if stacks is not None else running_stacks(client)
    budget = within if within is not None else TIMEOUTS.cluster_ready

    def green() -> bool:
        found = [p for s in stacks for p in problems(client, s)]
        if found:
            raise NotHealthy("; ".join(found))
        return True

    wait_for(green, within=budget, what=f"stacks {', '.join(stacks)} healthy", every=0.5)


class NotHealthy(Exception):
    """The problems a health gate still sees (the last one is shown when a wait runs out)."""

    def __repr__(self) -> str:
        return str(self)


def assert_healthy(
    client: docker.DockerClient, stacks: list[str] | None = None, *, within: float | None = None
) -> None:
    """The one health gate: before a fault (steady state) and after heal (verification)."""
    wait_healthy(client, stacks, within=within)


def service_log(client: docker.DockerClient, service: str, *, since: float) -> str:
    """A service's log lines since an epoch time (stdout and stderr), for checks that read what it reported."""
    return engines().container(service).logs(since=int(since), stdout=True, stderr=True).decode(errors="replace")
