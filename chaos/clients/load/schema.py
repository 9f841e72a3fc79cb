"""The benchmark tables: `bench.kv` for point reads, `bench.events` for writes (append-only).

Kept apart from the probes' `probe.writes` so that load never mixes with the failover checkers' data.
"""

from __future__ import annotations

import psycopg

from topology.endpoints import Endpoint

KV_ROWS = 10_000

POINT_READ = "SELECT v FROM bench.kv WHERE id = %s"
WRITE = "INSERT INTO bench.events (k, v) VALUES (%s, %s)"
#: nearest neighbours of a stored embedding (the HNSW index of topology/seed.py seed_vector answers it)
VECTOR_SEARCH = (
    "SELECT id FROM embeddings ORDER BY embedding <=> (SELECT embedding FROM embeddings WHERE id = %s) LIMIT 10"
)
VECTOR_ROWS_QUERY = "SELECT count(*) FROM embeddings"


def prepare(ep: Endpoint, *, rows: int = KV_ROWS, distribute: bool = False) -> None:
    """Create (idempotently) and fill bench.kv with `rows` rows; empty bench.events.

    `distribute` (Citus coordinator): both tables become distributed by id (a primary key must hold the
    distribution column), so the coordinator routes each point read or write to the worker with the shard."""
    with psycopg.connect(**ep.conninfo(connect_timeout=5), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        conn.execute("CREATE TABLE IF NOT EXISTS bench.kv (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench.events (id bigserial PRIMARY KEY, k int NOT NULL, "
            "v int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        if distribute:
            for table, column in (("bench.kv", "id"), ("bench.events", "id")):
                (done,) = conn.execute(
                    "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = %s::regclass", (table,)
                ).fetchone()
                if not done:
                    conn.execute("SELECT create_distributed_table(%s, %s)", (table, column))
        (n,) = conn.execute("SELECT count(*) FROM bench.kv").fetchone()
        if n != rows:
            conn.execute("TRUNCATE bench.kv")
            conn.execute("INSERT INTO bench.kv SELECT i, i, repeat('x', 64) FROM generate_series(1, %s) i", (rows,))
            conn.execute("ANALYZE bench.kv")
        conn.execute("TRUNCATE bench.events")


def clear_events(ep: Endpoint) -> None:
    """Writes pile up (thousands per second): empty the append table after a run."""
    with psycopg.connect(**ep.conninfo(connect_timeout=5), autocommit=True) as conn:
        conn.execute("TRUNCATE bench.events")


def vector_rows(ep: Endpoint) -> int:
    with psycopg.connect(**ep.conninfo(connect_timeout=5), autocommit=True) as conn:
        return int(conn.execute(VECTOR_ROWS_QUERY).fetchone()[0])
