"""The vector DB as a system under test: recall of its HNSW index, a data fingerprint, timed searches.

Why recall and not just "the index exists": an HNSW index that came back damaged from a crash still answers
every query, only with the wrong neighbours. Recall@k against an exact scan over the same rows is what a
user of the index would notice. The recall arithmetic is pure (unit-tested in suites/unit); the SQL here
only fetches the two result lists, and checks the plans, because a planner that silently stops using the
index would make recall a meaningless 1.0.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import yaml

from . import endpoints
from .errors import TopologyError
from .names import container
from .seed import VECTOR_DIM, VECTOR_ROWS

CONTAINER = container("vector-db")
INDEX = "embeddings_hnsw"
#: the postmaster's pid file inside the container ($PGDATA expands there)
PIDFILE = "$PGDATA/postmaster.pid"
#: config of the recall bound and the latency claim (env DPG_VECTOR_MIN_RECALL overrides the bound)
CONFIG_FILE = Path(__file__).resolve().parent.parent / "suites" / "vector" / "vector.yaml"
#: tolerance when a result's distance ties the k-th exact distance (float4 storage, cosine in float8)
TIE_EPS = 1e-9


# ------------------------------------------------------------------ pure parts (suites/unit/test_vector_recall.py)


@dataclass(frozen=True)
class Hit:
    id: int
    distance: float


def recall_at_k(approx: Sequence[Hit], exact: Sequence[Hit], k: int) -> float:
    """Share of the true k nearest neighbours found in the approximate top k, in [0, 1].

    A returned row that is not among the exact ids but lies exactly as close as the k-th true neighbour is a
    tie, not a miss (which of several equidistant rows an exact scan keeps is arbitrary). Fewer than k
    returned rows count as misses: an index that returns 1 row for LIMIT 10 has recall 0.1.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    truth = list(exact)[:k]
    if len(truth) < k:
        raise ValueError(f"exact result has {len(truth)} rows, fewer than k={k}")
    ids = {h.id for h in truth}
    kth = max(h.distance for h in truth)
    found = 0
    for h in list(approx)[:k]:
        if h.id in ids or h.distance <= kth + TIE_EPS:
            found += 1
    return found / k


def mean_recall(pairs: Sequence[tuple[Sequence[Hit], Sequence[Hit]]], k: int) -> float:
    if not pairs:
        raise ValueError("no queries to compute recall over")
    return statistics.fmean(recall_at_k(a, e, k) for a, e in pairs)


def query_vectors(n: int, dim: int = VECTOR_DIM) -> list[list[float]]:
    """Deterministic query vectors (another sine family than the seed's, so queries are not stored rows)."""
    return [[math.sin(q * 0.71 + d * 2.303 + (q % 13) * d * 0.029) for d in range(1, dim + 1)] for q in range(1, n + 1)]


def literal(vec: Sequence[float]) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in vec) + "]"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (the project's convention: with 5 samples p95 = max)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# ------------------------------------------------------------------------------------------------ config


@dataclass(frozen=True)
class Bound:
    value: float
    source: str


def min_recall() -> Bound:
    """recall@10 floor: env DPG_VECTOR_MIN_RECALL, else `min_recall_at_10` of suites/vector/vector.yaml."""
    env = os.environ.get("DPG_VECTOR_MIN_RECALL")
    raw, source = (
        (env, "env DPG_VECTOR_MIN_RECALL")
        if env
        else (_config().get("min_recall_at_10"), f"{CONFIG_FILE.name}: min_recall_at_10")
    )
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise TopologyError(f"{source}: {raw!r} is not a number") from None
    if not 0 < value <= 1:
        raise TopologyError(f"{source}: {value} must be in (0, 1]")
    return Bound(value, source)


def claimed_search_ms() -> float:
    """The seed's claim ("<5 ms vector search"), compared with in the benchmark, never asserted in a test."""
    return float(_config().get("claimed_search_ms", 5))


def _config() -> dict:
    try:
        return yaml.safe_load(CONFIG_FILE.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TopologyError(f"cannot read {CONFIG_FILE}: {exc}") from None


# --------------------------------------------------------------------------------------------------- SQL

SEARCH = "SELECT id, embedding <=> %s::vector AS d FROM embeddings ORDER BY embedding <=> %s::vector LIMIT %s"


def connect(timeout: int = 5) -> psycopg.Connection:
    return psycopg.connect(**endpoints.vector().conninfo(connect_timeout=timeout), autocommit=True)


@contextmanager
def session(*, ef_search: int | None = None, exact: bool = False, timeout: int = 5) -> Iterator[psycopg.Connection]:
    """A connection set up for HNSW search (optionally with `hnsw.ef_search`) or for an exact scan."""
    with connect(timeout) as conn:
        conn.execute("SET statement_timeout = '30s'")
        if ef_search is not None:
            conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
        if exact:  # no index paths at all: a sequential scan computes every distance
            conn.execute("SET enable_indexscan = off")
            conn.execute("SET enable_bitmapscan = off")
            conn.execute("SET enable_indexonlyscan = off")
        yield conn


def search(conn: psycopg.Connection, vec: Sequence[float], k: int = 10) -> list[Hit]:
    q = literal(vec)
    return [Hit(int(i), float(d)) for i, d in conn.execute(SEARCH, (q, q, k)).fetchall()]


def plan(conn: psycopg.Connection, vec: Sequence[float], k: int = 10) -> str:
    q = literal(vec)
    rows = conn.execute("EXPLAIN " + SEARCH, (q, q, k)).fetchall()
    return "\n".join(r[0] for r in rows)


@dataclass(frozen=True)
class RecallReport:
    recall: float
    queries: int
    k: int
    ef_search: int | None
    worst: float  # the lowest single-query recall
    hnsw_plan: str
    exact_plan: str


def measure_recall(*, queries: int = 50, k: int = 10, ef_search: int | None = None) -> RecallReport:
    """Mean recall@k of the HNSW index over `queries` deterministic queries, against an exact scan.

    Raises TopologyError when the planner does not use the index for the approximate side (recall would be
    1.0 for the wrong reason) or uses it for the exact side."""
    vecs = query_vectors(queries)
    with session(ef_search=ef_search) as ann, session(exact=True) as ex:
        hnsw_plan, exact_plan = plan(ann, vecs[0], k), plan(ex, vecs[0], k)
        if INDEX not in hnsw_plan:
            raise TopologyError(f"the HNSW query does not use {INDEX}:\n{hnsw_plan}")
        if INDEX in exact_plan:
            raise TopologyError(f"the exact query uses {INDEX}:\n{exact_plan}")
        pairs = [(search(ann, v, k), search(ex, v, k)) for v in vecs]
    per_query = [recall_at_k(a, e, k) for a, e in pairs]
    return RecallReport(statistics.fmean(per_query), len(vecs), k, ef_search, min(per_query), hnsw_plan, exact_plan)


@dataclass(frozen=True)
class Fingerprint:
    rows: int
    md5: str
    index_valid: bool


def fingerprint() -> Fingerprint:
    """Row count, an md5 over every row in id order, and whether the HNSW index is valid and ready."""
    with connect() as conn:
        conn.execute("SET statement_timeout = '60s'")
        rows, digest = conn.execute(
            "SELECT count(*), md5(string_agg(id::text || ':' || label || ':' || embedding::text, ',' ORDER BY id)) "
            "FROM embeddings"
        ).fetchone()
        valid = conn.execute(
            "SELECT i.indisvalid AND i.indisready FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
            (INDEX,),
        ).fetchone()
    return Fingerprint(int(rows), str(digest), bool(valid and valid[0]))


def accepts_queries() -> bool:
    """True once the server answers a search (after crash recovery); False while it is down or recovering."""
    try:
        with session(timeout=2) as conn:
            return len(search(conn, query_vectors(1)[0], 1)) == 1
    except psycopg.Error:
        return False


def rebuild_index() -> float:
    """REINDEX the HNSW index (a new random graph: HNSW draws each node's level at random); returns seconds."""
    with connect() as conn:
        conn.execute("SET statement_timeout = '300s'")
        conn.execute("SET maintenance_work_mem = '128MB'")
        t0 = time.perf_counter()
        conn.execute(f"REINDEX INDEX {INDEX}")
        return time.perf_counter() - t0


def postmaster_started_at() -> float:
    """pg_postmaster_start_time() as epoch seconds: it moves forward on every restart or crash recovery."""
    with connect() as conn:
        return float(conn.execute("SELECT extract(epoch FROM pg_postmaster_start_time())").fetchone()[0])


# ------------------------------------------------------------------------------------------------ timing


@dataclass(frozen=True)
class LatencySummary:
    mode: str
    n: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    ops_per_s: float


def time_searches(
    mode: str, n: int, *, k: int = 10, ef_search: int | None = None, max_seconds: float = 120.0
) -> LatencySummary:
    """Run up to `n` searches one after another on one connection (bounded by `max_seconds` too) and time each
    round trip on the client: what an application on this host would see, network and parsing included."""
    if n <= 0:
        raise TopologyError(f"number of queries must be positive, got {n}")
    vecs = query_vectors(min(n, 500))
    samples: list[float] = []
    with session(ef_search=ef_search, exact=(mode == "exact")) as conn:
        search(conn, vecs[0], k)  # warm the connection and the plan
        started = time.perf_counter()
        deadline = started + max_seconds
        for i in range(n):
            t0 = time.perf_counter()
            search(conn, vecs[i % len(vecs)], k)
            samples.append((time.perf_counter() - t0) * 1000)
            if time.perf_counter() > deadline:
                break
        elapsed = time.perf_counter() - started
    return LatencySummary(
        mode,
        len(samples),
        percentile(samples, 50),
        percentile(samples, 95),
        percentile(samples, 99),
        max(samples),
        len(samples) / elapsed,
    )


__all__ = [
    "CONTAINER",
    "INDEX",
    "PIDFILE",
    "VECTOR_ROWS",
    "Fingerprint",
    "Hit",
    "LatencySummary",
    "RecallReport",
    "accepts_queries",
    "claimed_search_ms",
    "fingerprint",
    "mean_recall",
    "measure_recall",
    "min_recall",
    "percentile",
    "postmaster_started_at",
    "query_vectors",
    "rebuild_index",
    "recall_at_k",
    "time_searches",
]
