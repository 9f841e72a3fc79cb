"""A handle on the Citus cluster (coordinator + 2 workers), so the Citus suite holds scenarios only.

What the suite asks of the cluster lives here: which worker holds which shard key, shard placements and their
balance, node activity, per-table fingerprints, the co-located join, reference-table reads through every node,
timed queries that report how they failed, and a coordinator -> worker route through the fault proxy
(pg_dist_poolinfo: Citus's own per-node connection override, meant for a pooler in front of a worker).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from . import endpoints
from .names import CITUS_NODES

COORDINATOR = CITUS_NODES[0]
WORKERS = CITUS_NODES[1:]
DISTRIBUTED = ("distributed.users", "distributed.events")
REFERENCE = ("distributed.countries", "distributed.regions")
#: primary key of each seeded table: the fingerprint orders rows by it
KEYS = {
    "distributed.users": "id",
    "distributed.events": "user_id, id",
    "distributed.countries": "id",
    "distributed.regions": "id",
}
#: the co-located join users x events, grouped so the result is small and order-stable
COLOCATED_JOIN = (
    "SELECT u.country_id, count(*), sum(e.id), count(DISTINCT u.id) FROM distributed.users u "
    "JOIN distributed.events e ON e.user_id = u.id GROUP BY u.country_id ORDER BY u.country_id"
)


@dataclass(frozen=True)
class Attempt:
    """One timed query: ok with its rows, or failed with the server's first error line."""

    what: str
    ok: bool
    ms: float
    rows: tuple = ()
    error: str = ""


@dataclass(frozen=True)
class Node:
    nodeid: int
    name: str
    port: int
    groupid: int
    isactive: bool
    shouldhaveshards: bool


def connect(
    node: str = COORDINATOR, *, statement_timeout_ms: int | None = None, connect_timeout: int = 5
) -> psycopg.Connection:
    """An autocommit session on a node's published port (127.0.0.1)."""
    conn = psycopg.connect(**endpoints.citus(node).conninfo(connect_timeout=connect_timeout), autocommit=True)
    if statement_timeout_ms is not None:
        conn.execute(f"SET statement_timeout = {int(statement_timeout_ms)}")
    return conn


def timed(conn: psycopg.Connection, sql: str, params: tuple = (), *, what: str = "") -> Attempt:
    """Run one statement and time it; a database error becomes a failed Attempt (never an exception)."""
    t0 = time.monotonic()
    try:
        rows = tuple(tuple(r) for r in conn.execute(sql, params).fetchall())
        return Attempt(what or sql, True, (time.monotonic() - t0) * 1000, rows)
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return Attempt(what or sql, False, (time.monotonic() - t0) * 1000, error=first)


def timed_fresh(
    node: str, sql: str, params: tuple = (), *, what: str = "", statement_timeout_ms: int | None = None
) -> Attempt:
    """`timed` on a new session: no connection the coordinator cached to a worker before a fault is reused,
    so what is measured is what a new client sees (connection setup to the worker included)."""
    t0 = time.monotonic()
    try:
        conn = connect(node, statement_timeout_ms=statement_timeout_ms)
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return Attempt(what or sql, False, (time.monotonic() - t0) * 1000, error=f"connect to {node}: {first}")
    with conn:
        return timed(conn, sql, params, what=what)


class CitusCluster:
    """Questions about the running Citus cluster, asked through the coordinator unless a node is named."""

    def __init__(self, coordinator: str = COORDINATOR) -> None:
        self.coordinator = coordinator

    def _rows(self, sql: str, params: tuple = (), node: str | None = None) -> list[tuple]:
        with connect(node or self.coordinator, statement_timeout_ms=30_000) as conn:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]

    # --- configuration and nodes -------------------------------------------------------------------------
    def setting_ms(self, name: str, node: str | None = None) -> int:
        """A time setting as the node runs it, in ms (e.g. citus.node_connection_timeout)."""
        ((value,),) = self._rows(
            "SELECT setting::int * CASE unit WHEN 's' THEN 1000 WHEN 'min' THEN 60000 "
            "ELSE 1 END FROM pg_settings WHERE name = %s",
            (name,),
            node,
        )
        return int(value)

    def nodes(self) -> list[Node]:
        return [
            Node(*r)
            for r in self._rows(
                "SELECT nodeid, nodename, nodeport, groupid, isactive, shouldhaveshards FROM pg_dist_node "
                "WHERE noderole = 'primary' ORDER BY groupid"
            )
        ]

    def node_id(self, name: str) -> int:
        found = [n.nodeid for n in self.nodes() if n.name == name]
        if not found:
            raise LookupError(f"{name} is not in pg_dist_node")
        return found[0]

    def version(self) -> str:
        ((v,),) = self._rows("SELECT citus_version()")
        return v

    # --- shards ----------------------------------------------------------------------------------------
    def placements(self, table: str = "distributed.users") -> dict[str, int]:
        """Worker -> number of the table's shard placements on it (the balance)."""
        return dict(
            self._rows(
                "SELECT p.nodename, count(*) FROM pg_dist_shard s JOIN pg_dist_placement pl USING (shardid) "
                "JOIN pg_dist_node p USING (groupid) WHERE s.logicalrelid = %s::regclass GROUP BY p.nodename "
                "ORDER BY p.nodename",
                (table,),
            )
        )

    def shard_count(self, table: str = "distributed.users") -> int:
        ((n,),) = self._rows("SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = %s::regclass", (table,))
        return n

    def colocation_splits(self) -> int:
        """users/events shard pairs (same hash range) placed on different nodes: 0 when co-location holds."""
        ((n,),) = self._rows(
            "SELECT count(*) FROM pg_dist_shard su JOIN pg_dist_shard se ON se.shardminvalue = su.shardminvalue "
            "AND se.logicalrelid = 'distributed.events'::regclass "
            "JOIN pg_dist_placement pu ON pu.shardid = su.shardid JOIN pg_dist_placement pe ON pe.shardid = se.shardid "
            "WHERE su.logicalrelid = 'distributed.users'::regclass AND pu.groupid <> pe.groupid"
        )
        return n

    def rebalance_moves(self) -> int:
        """Shard moves Citus itself would plan to balance distributed.users (0 = balanced in its eyes)."""
        ((n,),) = self._rows("SELECT count(*) FROM get_rebalance_table_shards_plan('distributed.users')")
        return n

    def keys_by_worker(self, per_worker: int = 20, among: int = 500) -> dict[str, list[int]]:
        """Worker -> the first `per_worker` user ids (of 1..among) whose shard is placed on it."""
        rows = self._rows(
            "SELECT i, p.nodename FROM generate_series(1, %s) i "
            "JOIN pg_dist_placement pl ON pl.shardid = get_shard_id_for_distribution_column('distributed.users', i) "
            "JOIN pg_dist_node p USING (groupid) ORDER BY i",
            (among,),
        )
        out: dict[str, list[int]] = {w: [] for w in WORKERS}
        for key, worker in rows:
            if worker in out and len(out[worker]) < per_worker:
                out[worker].append(key)
        return out

    # --- data ------------------------------------------------------------------------------------------
    def fingerprints(self) -> dict[str, tuple[int, str]]:
        """Table -> (row count, md5 of every row in key order): equal before and after a fault means no row
        was lost, added or changed."""
        out = {}
        for table in DISTRIBUTED + REFERENCE:
            ((n, digest),) = self._rows(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY {KEYS[table]}), '')) FROM {table} t"
            )
            out[table] = (n, digest)
        return out

    def colocated_join(self) -> list[tuple]:
        return self._rows(COLOCATED_JOIN)

    def reference_reads(self) -> dict[str, dict[str, int]]:
        """Node -> reference table -> row count, each read through that node itself."""
        return {
            node: {t: self._rows(f"SELECT count(*) FROM {t}", node=node)[0][0] for t in REFERENCE}
            for node in CITUS_NODES
        }

    def snapshot(self) -> dict:
        """Everything a scenario compares before and after a fault."""
        return {
            "fingerprints": self.fingerprints(),
            "colocated_join": self.colocated_join(),
            "placements": self.placements(),
            "shards": self.shard_count(),
            "colocation_splits": self.colocation_splits(),
            "reference_reads": self.reference_reads(),
        }

    # --- the worker's clients, as the worker sees them ----------------------------------------------------
    def peers_of(self, worker: str) -> list[str]:
        """Client addresses of the sessions on `worker` (who reaches it, and through what)."""
        return [
            r[0]
            for r in self._rows(
                "SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE client_addr IS NOT NULL "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                node=worker,
            )
        ]

    # --- routing through the fault proxy ---------------------------------------------------------------
    @contextmanager
    def routed_through(self, worker: str, host: str, port: int) -> Iterator[None]:
        """Coordinator -> `worker` connections go to host:port (a fault-proxy route) while inside; the
        pg_dist_poolinfo row is removed on exit whatever happened. Only sessions opened inside use it (a
        session keeps the worker connections it already cached)."""
        nodeid = self.node_id(worker)
        with connect(self.coordinator) as conn:
            conn.execute("DELETE FROM pg_dist_poolinfo WHERE nodeid = %s", (nodeid,))
            conn.execute(
                "INSERT INTO pg_dist_poolinfo (nodeid, poolinfo) VALUES (%s, %s)", (nodeid, f"host={host} port={port}")
            )
        try:
            yield
        finally:
            with connect(self.coordinator) as conn:
                conn.execute("DELETE FROM pg_dist_poolinfo WHERE nodeid = %s", (nodeid,))

    def poolinfo(self) -> list[tuple]:
        return self._rows("SELECT nodeid, poolinfo FROM pg_dist_poolinfo ORDER BY nodeid")
