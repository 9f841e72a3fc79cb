"""Seed data, loaded idempotently: vector DB embeddings + HNSW index; Citus tables (where Citus runs).

Deterministic generators (no random state) so fingerprints taken before and after a fault are comparable
across runs and machines.
"""

from __future__ import annotations

import psycopg

from . import endpoints

VECTOR_ROWS = 10_000
VECTOR_DIM = 64
CITUS_USERS, CITUS_EVENTS, CITUS_SHARDS = 10_000, 50_000, 32


def _connect(ep: endpoints.Endpoint) -> psycopg.Connection:
    return psycopg.connect(**ep.conninfo(connect_timeout=5), autocommit=True)


def seed_vector() -> None:
    """10k x 64-d embeddings from a sine formula, HNSW (cosine) index."""
    with _connect(endpoints.vector()) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (id int PRIMARY KEY, label text NOT NULL, "
            f"embedding vector({VECTOR_DIM}) NOT NULL)"
        )
        (n,) = conn.execute("SELECT count(*) FROM embeddings").fetchone()
        if n != VECTOR_ROWS:
            conn.execute("TRUNCATE embeddings")
            conn.execute(f"""
                INSERT INTO embeddings (id, label, embedding)
                SELECT i, 'item-' || i,
                       (SELECT array_agg(sin(i * 0.37 + d * 1.618 + (i % 97) * d * 0.013)::real ORDER BY d)
                          FROM generate_series(1, {VECTOR_DIM}) d)::vector
                  FROM generate_series(1, {VECTOR_ROWS}) i""")
        conn.execute(
            "CREATE INDEX IF NOT EXISTS embeddings_hnsw ON embeddings "
            "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        conn.execute("ANALYZE embeddings")


def _libpq_quote(value: str) -> str:
    """A conninfo value in single quotes (libpq escapes: backslash and quote)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _citus_authinfo(conn: psycopg.Connection, password: str) -> None:
    """Node-to-node credentials (pg_dist_authinfo, nodeid 0 = every node). The nodes require scram-sha-256
    from the network, and the official image sets no .pgpass: without this row the coordinator cannot open
    connections to the workers (nor they to each other). pg_dist_authinfo is never synced, so every node
    gets its own row."""
    conn.execute("DELETE FROM pg_dist_authinfo WHERE nodeid = 0 AND rolename = current_user")
    conn.execute(
        "INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo) VALUES (0, current_user, %s)",
        ("password=" + _libpq_quote(password),),
    )


def seed_citus() -> None:
    """Coordinator + 2 workers; distributed.users (32 shards) with co-located events; reference tables.

    Idempotent: run again on a seeded cluster it changes nothing (rows are only (re)loaded when counts differ).
    """
    from .names import CITUS_NODES

    for node in CITUS_NODES:  # each node: extension (official image has it already) + credentials
        ep = endpoints.citus(node)
        with _connect(ep) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
            _citus_authinfo(conn, ep.password)
    with _connect(endpoints.citus()) as conn:
        conn.execute("SELECT citus_set_coordinator_host('citus-coordinator', 5432)")
        for worker in CITUS_NODES[1:]:
            conn.execute(
                "SELECT citus_add_node(%s, 5432) WHERE NOT EXISTS (SELECT 1 FROM pg_dist_node WHERE nodename = %s)",
                (worker, worker),
            )
        conn.execute(f"SET citus.shard_count = {CITUS_SHARDS}")
        conn.execute("CREATE SCHEMA IF NOT EXISTS distributed")
        conn.execute("CREATE TABLE IF NOT EXISTS distributed.regions (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS distributed.countries (id int PRIMARY KEY, "
            "region_id int NOT NULL, name text NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS distributed.users (id bigint PRIMARY KEY, "
            "country_id int NOT NULL, email text NOT NULL, created_at timestamptz NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS distributed.events (user_id bigint NOT NULL, id bigint NOT NULL, "
            "kind text NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (user_id, id))"
        )
        done = {r[0] for r in conn.execute("SELECT logicalrelid::regclass::text FROM pg_dist_partition").fetchall()}
        if "distributed.regions" not in done:
            conn.execute("SELECT create_reference_table('distributed.regions')")
        if "distributed.countries" not in done:
            conn.execute("SELECT create_reference_table('distributed.countries')")
        if "distributed.users" not in done:
            conn.execute("SELECT create_distributed_table('distributed.users', 'id')")
        if "distributed.events" not in done:
            conn.execute(
                "SELECT create_distributed_table('distributed.events', 'user_id', colocate_with => 'distributed.users')"
            )
        conn.execute("CREATE INDEX IF NOT EXISTS users_country ON distributed.users (country_id)")
        conn.execute("CREATE INDEX IF NOT EXISTS events_kind ON distributed.events (kind)")
        if conn.execute("SELECT count(*) FROM distributed.regions").fetchone()[0] == 0:
            conn.execute("INSERT INTO distributed.regions SELECT i, 'region-' || i FROM generate_series(1, 5) i")
        if conn.execute("SELECT count(*) FROM distributed.countries").fetchone()[0] == 0:
            conn.execute(
                "INSERT INTO distributed.countries SELECT i, 1 + i % 5, 'country-' || i FROM generate_series(1, 50) i"
            )
        (users,) = conn.execute("SELECT count(*) FROM distributed.users").fetchone()
        (events,) = conn.execute("SELECT count(*) FROM distributed.events").fetchone()
        if (users, events) != (CITUS_USERS, CITUS_EVENTS):
            conn.execute("TRUNCATE distributed.users, distributed.events")
            conn.execute(
                f"INSERT INTO distributed.users SELECT i, 1 + i % 50, 'user' || i || '@dpg.test', "
                f"timestamptz '2026-01-01' + i * interval '1 minute' FROM generate_series(1, {CITUS_USERS}) i"
            )
            conn.execute(
                f"INSERT INTO distributed.events SELECT 1 + (i % {CITUS_USERS}), i, "
                f"(ARRAY['login','view','buy','logout'])[1 + i % 4], timestamptz '2026-01-01' + "
                f"i * interval '1 second' FROM generate_series(1, {CITUS_EVENTS}) i"
            )


SEEDERS = {"vector": seed_vector, "citus": seed_citus}
