"""Drill 9, vector data: a pgvector table with an HNSW index is backed up and restored into a scratch copy; the
restored index answers k-NN queries with the same neighbours and the same recall against exact search.

Scope: pgBackRest protects the Patroni cluster, which carries pgvector; the standalone `vector-db` container is
not under pgBackRest (no archiving there), so the drill uses an HNSW table in the Patroni cluster.
"""

from __future__ import annotations

import allure
import pytest

from chaos.experiments.drill import live_query

from .conftest import primary

pytestmark = [
    pytest.mark.faults("Disaster@stack:patroni"),
    pytest.mark.dr,
    pytest.mark.destructive,
    allure.parent_suite("dr"),
    allure.suite("vector"),
]

ROWS, DIM, K, EVERY = 5000, 32, 10, 250
SETUP = [
    "CREATE SCHEMA IF NOT EXISTS dr",
    "DROP TABLE IF EXISTS dr.embeddings",
    f"CREATE TABLE dr.embeddings (id int PRIMARY KEY, embedding vector({DIM}) NOT NULL)",
    f"""INSERT INTO dr.embeddings SELECT i, (SELECT array_agg(sin(i * 0.37 + d * 1.618 + (i % 97) * d * 0.013)::real
        ORDER BY d) FROM generate_series(1, {DIM}) d)::vector FROM generate_series(1, {ROWS}) i""",
    "CREATE INDEX embeddings_hnsw ON dr.embeddings USING hnsw (embedding vector_cosine_ops) "
    "WITH (m = 16, ef_construction = 64)",
    "ANALYZE dr.embeddings",
]


def neighbours(exact: bool) -> str:
    """Top-K ids per query vector (every EVERY-th row), one string; `+ 0` keeps the planner off the index."""
    order = "(e.embedding <=> q.embedding) + 0" if exact else "e.embedding <=> q.embedding"
    return (
        f"SELECT string_agg(ids, ';' ORDER BY qid) FROM (SELECT q.id AS qid, (SELECT string_agg(id::text, ',') "
        f"FROM (SELECT e.id FROM dr.embeddings e ORDER BY {order} LIMIT {K}) top) AS ids "
        f"FROM dr.embeddings q WHERE q.id % {EVERY} = 0) s"
    )


def recall(approx: str, exact: str) -> float:
    pairs = list(zip(approx.split(";"), exact.split(";"), strict=True))
    return sum(len(set(a.split(",")) & set(e.split(","))) for a, e in pairs) / (K * len(pairs))


@allure.title("HNSW index restored: same neighbours, same recall as the source")
def test_hnsw_index_survives_backup_and_restore(repo, has_backup, drill):
    run = live_query(primary())
    with drill.phase("vector table + HNSW index on the cluster"):
        for sql in SETUP:
            run(sql)
        source_approx, source_exact = run(neighbours(False)), run(neighbours(True))
    with drill.phase("backup (incremental) and archive"):
        repo.backup("incr")
        repo.check()
    with repo.scratch() as scratch:
        with drill.phase("restore + recovery (scratch)"):
            scratch.restore()
            scratch.start()
        restored_approx, restored_exact = scratch.sql(neighbours(False)), scratch.sql(neighbours(True))
        restored_plan = scratch.sql(f"EXPLAIN {neighbours(False)}")
    src, dst = recall(source_approx, source_exact), recall(restored_approx, restored_exact)
    run("DROP TABLE dr.embeddings")
    drill.report(
        rto_s=drill.span("restore + recovery (scratch)", "restore + recovery (scratch)"),
        rpo_s=None,
        recall_source=round(src, 3),
        recall_restored=round(dst, 3),
        queries=ROWS // EVERY,
        k=K,
    )
    assert "embeddings_hnsw" in restored_plan, f"the restored copy does not use the HNSW index:\n{restored_plan}"
    assert restored_exact == source_exact, "exact neighbours differ: the restored vectors are not the source's"
    assert restored_approx == source_approx, "the restored HNSW index answers differently from the source's"
    assert dst == src, f"recall after restore {dst:.3f} differs from the source's {src:.3f}"
