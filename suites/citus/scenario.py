"""Steps shared by the Citus fault scenarios (phrases of the runbook, like Patroni's step files)."""

from __future__ import annotations

import re

from topology.citus import COORDINATOR, Attempt, CitusCluster, connect, timed, timed_fresh

#: what a clear "that worker is not there" error from Citus looks like (DNS gone after docker stop/kill,
#: connection timeout while paused or cut)
CLEAR_ERROR = re.compile(
    r"could not (establish any connections to the node|translate host name|connect to)|"
    r"connection to the remote node .* failed|connection .* (refused|timed out)",
    re.I,
)

ROUTER_SQL = (
    "SELECT u.email, count(e.id), coalesce(sum(e.id), 0) FROM distributed.users u "
    "LEFT JOIN distributed.events e ON e.user_id = u.id WHERE u.id = %s GROUP BY u.email"
)
MULTI_SHARD_SQL = "SELECT count(*) FROM distributed.users"


def router_results(keys: list[int], node: str = COORDINATOR, *, statement_timeout_ms: int) -> dict[int, Attempt]:
    """Each key's co-located router query (users x events of one user), on one session."""
    with connect(node, statement_timeout_ms=statement_timeout_ms) as conn:
        return {k: timed(conn, ROUTER_SQL, (k,), what=f"router key {k}") for k in keys}


def multi_shard(node: str = COORDINATOR, *, statement_timeout_ms: int) -> Attempt:
    return timed_fresh(node, MULTI_SHARD_SQL, what="multi-shard count", statement_timeout_ms=statement_timeout_ms)


def summary(attempts: list[Attempt]) -> dict:
    ms = sorted(a.ms for a in attempts)
    return {
        "n": len(ms),
        "failed": sum(not a.ok for a in attempts),
        "p50_ms": round(ms[len(ms) // 2], 1) if ms else None,
        "p95_ms": round(ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))], 1) if ms else None,
        "max_ms": round(ms[-1], 1) if ms else None,
    }


def snapshot_diff(before: dict, after: dict) -> dict:
    return {k: {"before": before[k], "after": after.get(k)} for k in before if before[k] != after.get(k)}


def describe(citus: CitusCluster) -> dict:
    return {"nodes": [n.__dict__ for n in citus.nodes()], "placements": citus.placements()}
