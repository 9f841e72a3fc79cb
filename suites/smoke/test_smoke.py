"""Smoke: every stack is healthy and every entry point routes where the cluster team expects it to."""

from __future__ import annotations

import dataclasses
import json

import allure
import psycopg
import pytest
import requests
from psycopg import errors as pgerrors

from topology import endpoints, health
from topology.health import EXPECTED_TCP_ROUTERS, query_one
from topology.inventory import current, engines
from topology.names import PATRONI_NODES, probe_schema
from topology.seed import CITUS_EVENTS, CITUS_SHARDS, CITUS_USERS, VECTOR_DIM, VECTOR_ROWS
from topology.timeouts import TIMEOUTS

pytestmark = [pytest.mark.smoke, allure.parent_suite("smoke")]


@pytest.mark.parametrize("stack", ["patroni", "pgbouncer", "traefik", "vector", "redis", "toxiproxy", "monitoring"])
def test_stack_is_healthy(request, stack):
    fixture = {
        "patroni": "patroni_stack",
        "pgbouncer": "write_paths_stacks",
        "traefik": "write_paths_stacks",
        "vector": "vector_stack",
        "redis": "redis_stack",
        "toxiproxy": "toxiproxy_stack",
        "monitoring": "monitoring_stack",
    }[stack]
    client = request.getfixturevalue(fixture)
    # a snapshot can catch replicas a few kB behind a write made between Patroni loops (seen in CI);
    # healthy means the gate goes green within a bound, and a problem that persists still fails
    health.assert_healthy(client, [stack], within=TIMEOUTS.settle)


@pytest.mark.parametrize(
    "endpoint",
    [endpoints.haproxy, endpoints.traefik, endpoints.pgbouncer, endpoints.multihost],
    ids=["haproxy-5000", "traefik-5500", "pgbouncer-6432", "libpq-multihost"],
)
def test_write_paths_reach_the_primary(write_paths_stacks, endpoint):
    (in_recovery,) = query_one(endpoint(), "SELECT pg_is_in_recovery()")
    assert in_recovery is False


@pytest.mark.parametrize("endpoint", [endpoints.haproxy_ro, endpoints.traefik_ro], ids=["haproxy-5001", "traefik-5501"])
def test_read_paths_reach_a_replica(write_paths_stacks, endpoint):
    (in_recovery,) = query_one(endpoint(), "SELECT pg_is_in_recovery()")
    assert in_recovery is True


def test_readonly_user_cannot_write_even_on_the_primary(write_paths_stacks):
    ep, ro_login = endpoints.haproxy(), endpoints.haproxy_ro()
    ro = dataclasses.replace(ep, name="haproxy-as-readonly", user=ro_login.user, password=ro_login.password)
    schema = probe_schema()
    with psycopg.connect(**ro.conninfo(), autocommit=True) as conn:
        assert conn.execute(f"SELECT count(*) >= 0 FROM {schema}.writes").fetchone()[0]
        with pytest.raises((pgerrors.ReadOnlySqlTransaction, pgerrors.InsufficientPrivilege)):
            conn.execute(f"INSERT INTO {schema}.writes (value, probe, run_id) VALUES (-1, 'smoke', 'smoke')")


#: Runs inside a Patroni container: calls the image's Ha.fetch_node_status with a stub transport that records
#: the timeout it is given, once without and once with the opt-in key in the dynamic config.
MEMBER_PROBE_CHECK = """
import json
from types import SimpleNamespace
import patroni.postgresql  # noqa: F401 - patroni.ha alone hits a circular import; Patroni loads this first
from patroni import global_config
from patroni.ha import Ha
seen = []
def request(member, timeout=None, retries=None):
    seen.append(timeout)
    raise OSError("stub transport")
stub = SimpleNamespace(patroni=SimpleNamespace(request=request))
member = SimpleNamespace(name="stub", api_url="http://stub:8008/patroni")
for config in ({}, {"dpg_member_probe_timeout_ms": 500}):
    global_config.update(None, config)
    Ha.fetch_node_status(stub, member)
print(json.dumps(seen))
"""


@allure.title("the image's Patroni probes members for its own 2 s unless the opt-in key says otherwise")
def test_member_probe_timeout_is_stock_unless_opted_in(patroni_stack):
    """The Dockerfile edits one line of Patroni's ha.py; this pins what that line does in the built image."""
    if current().is_target:
        pytest.skip("pins one line of this project's Patroni image; a target runs its own Patroni")
    res = engines().container(PATRONI_NODES[0]).exec_run(["python3", "-c", MEMBER_PROBE_CHECK], demux=True)
    stdout, stderr = ((part or b"").decode(errors="replace") for part in res.output)
    assert res.exit_code == 0, stdout + stderr
    # stdout only: Patroni's "Request failed" warnings go to stderr, and in one stream they interleave with it
    assert json.loads(stdout) == [2.0, 0.5], stdout + stderr


def test_traefik_api_lists_the_three_tcp_routers(write_paths_stacks):
    """Regression for the seed's bug: /api/tcp/routers returned []."""
    routers = {r["name"].split("@")[0]: r for r in health.traefik_routers()}
    if current().is_target:  # a target names its routers itself: the seed's bug is an empty list
        assert routers, "Traefik's /api/tcp/routers is empty (the seed's bug)"
    else:
        assert sorted(routers) == sorted(EXPECTED_TCP_ROUTERS)
    assert all(r.get("status") == "enabled" for r in routers.values()), routers


def test_traefik_citus_router_reaches_the_coordinator(write_paths_stacks, citus_stack):
    (name,) = query_one(endpoints.traefik_citus(), "SELECT extname FROM pg_extension WHERE extname = 'citus'")
    assert name == "citus"


def embedded_seed_only() -> None:
    if current().is_target:
        pytest.skip("checks the seed data this project loads into its own copy; a target holds its own data")


@pytest.mark.citus
def test_citus_seed_data(citus_stack):
    embedded_seed_only()
    ep = endpoints.citus()
    assert query_one(ep, "SELECT count(*) FROM distributed.users")[0] == CITUS_USERS
    assert query_one(ep, "SELECT count(*) FROM distributed.events")[0] == CITUS_EVENTS
    (shards,) = query_one(ep, "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'distributed.users'::regclass")
    assert shards == CITUS_SHARDS
    with psycopg.connect(**ep.conninfo(), autocommit=True) as conn:
        per_node = conn.execute("""
            SELECT nodename, count(*) FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
              JOIN pg_dist_node n USING (groupid) WHERE logicalrelid = 'distributed.users'::regclass
             GROUP BY nodename""").fetchall()
    assert sorted(n for _, n in per_node) == [CITUS_SHARDS // 2, CITUS_SHARDS // 2], per_node


def test_vector_search_returns_k_neighbours(vector_stack):
    embedded_seed_only()
    with psycopg.connect(**endpoints.vector().conninfo(), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM embeddings").fetchone()[0] == VECTOR_ROWS
        conn.execute("SET hnsw.ef_search = 40")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT id FROM embeddings "
                "ORDER BY embedding <=> (SELECT embedding FROM embeddings WHERE id = 42) LIMIT 10"
            ).fetchall()
        )
        rows = conn.execute(
            "SELECT id FROM embeddings ORDER BY embedding <=> (SELECT embedding FROM embeddings WHERE id = 42) LIMIT 10"
        ).fetchall()
    assert "embeddings_hnsw" in plan, plan
    assert len(rows) == 10 and rows[0][0] == 42
    assert VECTOR_DIM == 64


def test_prometheus_scrapes_every_target(monitoring_stack):
    targets = requests.get(endpoints.url("prometheus") + "/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    jobs = {t["labels"]["job"] for t in targets}
    if not current().is_target:  # this project's scrape configuration; a target's jobs are its own
        assert {"patroni", "etcd", "haproxy", "traefik", "postgres", "redis"} <= jobs
    assert targets, "Prometheus has no active targets"
    down = [(t["labels"]["job"], t["labels"]["instance"]) for t in targets if t["health"] != "up"]
    assert not down, down
