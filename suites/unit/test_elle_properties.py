"""Property tests against in-process simulated databases with known guarantees, and seeded defects
that must be caught. Hypothesis is derandomized so CI sees the same examples every run."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.checkers.elle import check, simulate

pytestmark = pytest.mark.unit

PROPERTY = settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**16)
sizes = st.integers(20, 300)
concurrency = st.integers(2, 8)
DATA_ONLY_G = ("G0", "G1a", "G1b", "G1c", "G-single-item", "G-nonadjacent-item")


@PROPERTY
@given(seeds, sizes, concurrency, st.sampled_from([0.0, 0.1]))
def test_serializable_database_is_never_flagged(seed: int, n: int, c: int, info_rate: float) -> None:
    ops = list(simulate.serializable(n, seed=seed, concurrency=c, info_rate=info_rate))
    for model in ("strict-serializable", "serializable"):
        v = check(ops, model)
        assert v.valid is True, (model, v.to_dict()["anomaly-types"])


@PROPERTY
@given(seeds, sizes, concurrency)
def test_snapshot_isolation_database_shows_only_g2_item(seed: int, n: int, c: int) -> None:
    ops = list(simulate.snapshot_isolation(n, seed=seed, concurrency=c))
    v = check(ops, "serializable")
    assert set(v.anomaly_types) <= {"G2-item"}, v.anomaly_types
    # snapshots are taken at invocation: even strong snapshot isolation (realtime included) holds
    assert check(ops, "strong-snapshot-isolation").valid is True


def test_snapshot_isolation_database_does_produce_write_skew() -> None:
    found = [
        bool(
            check(list(simulate.snapshot_isolation(150, seed=s, concurrency=6)), "serializable").anomalies.get(
                "G2-item"
            )
        )
        for s in range(12)
    ]
    assert sum(found) >= 6, found


@PROPERTY
@given(seeds, sizes, concurrency, st.floats(0, 60))
def test_stale_replica_shows_realtime_anomalies_only(seed: int, n: int, c: int, lag_ms: float) -> None:
    ops = list(simulate.stale_replica(n, seed=seed, concurrency=c, lag_ms=lag_ms))
    assert check(ops, "serializable").valid is True
    strict = check(ops, "strict-serializable")
    assert all(t.endswith("-realtime") for t in strict.anomaly_types), strict.anomaly_types
    assert not set(strict.anomaly_types) & set(DATA_ONLY_G)


def test_stale_replica_does_produce_realtime_anomalies() -> None:
    found = [
        check(list(simulate.stale_replica(150, seed=s, concurrency=5, lag_ms=40)), "strict-serializable").anomaly_types
        for s in range(6)
    ]
    assert all("G-single-item-realtime" in t for t in found), found


def test_replica_paused_two_seconds_shows_a_realtime_anomaly() -> None:
    ops = list(simulate.stale_replica(1000, seed=7, concurrency=4, pauses=((500, 2000),)))
    assert ops[-1]["time"] > 3_000_000_000  # the history outlives the pause
    v = check(ops, "strict-serializable")
    assert v.valid is False and "G-single-item-realtime" in v.anomaly_types
    during = [
        c
        for c in v.anomalies["G-single-item-realtime"]
        if any(op.get("node") == "replica" and 500e6 <= op["time"] <= 2600e6 for op in c["cycle"])
    ]
    assert during, "the anomalies should involve replica reads during the pause"
    assert check(ops, "serializable").valid is True


def test_no_pause_no_lag_replica_is_strictly_serializable() -> None:
    ops = list(simulate.stale_replica(400, seed=3, concurrency=4))
    assert check(ops, "strict-serializable").valid is True


def test_lost_commit_reported_as_failed_is_an_aborted_read() -> None:
    v = check(list(simulate.lossy_commit(300, seed=5, concurrency=4, p=0.1)), "read-committed")
    assert "G1a" in v.anomaly_types, v.anomaly_types


def test_lost_commit_reported_as_ok_is_an_incompatible_order() -> None:
    v = check(list(simulate.lossy_commit(300, seed=5, concurrency=4, p=0.1, lie=True)), "read-committed")
    assert "incompatible-order" in v.anomaly_types, v.anomaly_types
    assert "G1a" not in v.anomaly_types  # nothing failed: the lie hides the abort, the reads expose it
