"""The recall arithmetic of topology/vector.py, without Docker: it must be able to say "bad"."""

from __future__ import annotations

import pytest

from topology import vector
from topology.errors import TopologyError
from topology.vector import Hit, mean_recall, percentile, recall_at_k

pytestmark = pytest.mark.unit

EXACT = [Hit(i, 0.1 * i) for i in range(1, 11)]  # ids 1..10 at distances 0.1 .. 1.0


def test_identical_results_have_full_recall():
    assert recall_at_k(EXACT, EXACT, 10) == 1.0


def test_a_bad_result_set_has_low_recall():
    wrong = [Hit(100 + i, 2.0 + i) for i in range(7)] + EXACT[:3]
    assert recall_at_k(wrong, EXACT, 10) == pytest.approx(0.3)
    assert recall_at_k(list(reversed(EXACT)), EXACT, 10) == 1.0  # order within the top k does not matter


def test_too_few_rows_count_as_misses():
    """pgvector returns at most ef_search rows: ef_search=1 for LIMIT 10 gives one row, recall 0.1."""
    assert recall_at_k(EXACT[:1], EXACT, 10) == pytest.approx(0.1)
    assert recall_at_k([], EXACT, 10) == 0.0


def test_a_tie_with_the_kth_neighbour_is_not_a_miss():
    tie = [*EXACT[:9], Hit(999, EXACT[9].distance)]
    farther = [*EXACT[:9], Hit(999, EXACT[9].distance + 0.001)]
    assert recall_at_k(tie, EXACT, 10) == 1.0
    assert recall_at_k(farther, EXACT, 10) == pytest.approx(0.9)


def test_mean_recall_averages_queries_and_rejects_nothing():
    assert mean_recall([(EXACT, EXACT), (EXACT[:5], EXACT)], 10) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        mean_recall([], 10)
    with pytest.raises(ValueError):
        recall_at_k(EXACT, EXACT[:5], 10)


def test_a_result_set_below_the_floor_fails_the_floor(monkeypatch):
    monkeypatch.delenv("DPG_VECTOR_MIN_RECALL", raising=False)
    bound = vector.min_recall()
    assert bound.value == 0.95 and "vector.yaml" in bound.source
    degraded = [*EXACT[:9], Hit(500, 5.0)]  # one miss in ten: 0.9
    assert recall_at_k(degraded, EXACT, 10) < bound.value


def test_recall_bound_env_override_is_validated(monkeypatch):
    monkeypatch.setenv("DPG_VECTOR_MIN_RECALL", "0.9")
    assert vector.min_recall().value == 0.9
    monkeypatch.setenv("DPG_VECTOR_MIN_RECALL", "high")
    with pytest.raises(TopologyError, match="DPG_VECTOR_MIN_RECALL"):
        vector.min_recall()
    monkeypatch.setenv("DPG_VECTOR_MIN_RECALL", "1.5")
    with pytest.raises(TopologyError, match=r"must be in \(0, 1\]"):
        vector.min_recall()


def test_query_vectors_are_deterministic_and_sized():
    a, b = vector.query_vectors(3), vector.query_vectors(3)
    assert a == b and len(a) == 3 and all(len(v) == vector.VECTOR_DIM for v in a)


def test_nearest_rank_percentile():
    assert percentile([5, 1, 4, 2, 3], 50) == 3
    assert percentile([5, 1, 4, 2, 3], 95) == 5
    assert percentile(list(range(1, 101)), 99) == 99
