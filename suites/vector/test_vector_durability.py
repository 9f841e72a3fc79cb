"""The vector DB after a crash or a restart: same rows, same bytes, an HNSW index that still finds neighbours.

Steady state: 10k embeddings, fingerprint, recall@10 of the HNSW index against an exact scan. Inject: kill -9 of
the postmaster, SIGKILL of the whole container, docker restart.
Verify: the server really restarted (pg_postmaster_start_time moved), rows and fingerprint unchanged, the
index valid and still used, recall not below its value before the fault (the search is deterministic on an
unchanged graph), health gate green; last, recall before and after >= the floor of suites/vector/vector.yaml
(a fresh HNSW build below it is reported as RecallBelowFloor, an xfail: see `known_random_build`).
"""

from __future__ import annotations

import time
from dataclasses import asdict

import allure
import pytest

from chaos.faults import Killed, ProcessKilled, ServiceRestarted
from chaos.history import History
from topology import evidence, vector
from topology.health import assert_healthy
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

pytestmark = pytest.mark.destructive


class RecallBelowFloor(AssertionError):
    """The index as built is below the recall floor, before and after the fault alike (kept apart from damage
    done by the fault, which fails the test outright)."""


#: HNSW draws each node's level at random, so every fresh seed builds another graph. Measured over 16 builds
#: of the seed's index (docs/findings.md): recall@10 at ef_search=40 from 0.920 to 0.998, median 0.990; 1 of 16 below
#: 0.95. Such a build is an expected, reported outcome; any loss caused by the fault is a failure.
known_random_build = pytest.mark.xfail(
    raises=RecallBelowFloor, strict=False, reason="this fresh HNSW build is below the recall floor (1 in 16 measured)"
)


@pytest.fixture
def baseline(vector_stack):
    """Steady state before the fault: healthy, rows and fingerprint taken, recall measured."""
    bound = vector.min_recall()
    with allure.step("steady state: rows, fingerprint, recall@10"):
        assert_healthy(vector_stack, ["vector"])
        fp = vector.fingerprint()
        rec = vector.measure_recall()
        evidence.attach_json("before", {"fingerprint": asdict(fp), "recall": asdict(rec), "bound": asdict(bound)})
        assert fp.rows == vector.VECTOR_ROWS and fp.index_valid, fp
        # a build below the floor is reported at the end (RecallBelowFloor); the fault is still injected and
        # the no-loss checks still run on it
    return fp, rec, bound, vector.postmaster_started_at()


def verify_after(client, fault: str, baseline, injected_at: float) -> None:
    fp_before, rec_before, bound, started_before = baseline
    with allure.step("verify: restarted, same data, no recall lost"):
        wait_for(
            vector.accepts_queries,
            within=TIMEOUTS.stack_up,
            what=f"vector DB answers searches after {fault}",
            every=0.25,
        )
        back_s = time.monotonic() - injected_at
        started_after = vector.postmaster_started_at()
        fp = vector.fingerprint()
        rec = vector.measure_recall()
        evidence.attach_json(
            "after",
            {
                "fingerprint": asdict(fp),
                "recall": asdict(rec),
                "searches_back_s": back_s,
                "postmaster_start_before": started_before,
                "postmaster_start_after": started_after,
            },
        )
        evidence.record_measurement(
            "vector_recovery",
            fault=fault,
            searches_back_s=round(back_s, 3),
            recall_before=rec_before.recall,
            recall_after=rec.recall,
            rows=fp.rows,
            fingerprint_unchanged=fp == fp_before,
        )
        assert started_after > started_before, f"{fault}: the postmaster did not restart (start time unchanged)"
        assert fp.rows == fp_before.rows, f"{fault}: {fp.rows} rows after, {fp_before.rows} before"
        assert fp.md5 == fp_before.md5, f"{fault}: data fingerprint changed ({fp_before.md5} -> {fp.md5})"
        assert fp.index_valid, f"{fault}: index {vector.INDEX} not valid/ready after recovery"
        # same graph, same queries, same ef_search: a search is deterministic, so any loss is damage
        assert rec.recall >= rec_before.recall, (
            f"{fault}: recall@10 fell from {rec_before.recall:.3f} to {rec.recall:.3f} on the same index"
        )
    with allure.step("final health gate"):
        assert_healthy(client, ["vector"])
    if min(rec.recall, rec_before.recall) < bound.value:
        raise RecallBelowFloor(
            f"{fault}: recall@10 {rec_before.recall:.3f} before / {rec.recall:.3f} after "
            f"(worst query {rec.worst:.2f}) below {bound.value} ({bound.source}); the fault "
            f"took nothing away (rows, fingerprint, recall unchanged): this HNSW build is "
            f"below the floor"
        )


@pytest.mark.faults("ProcessKilled@vector-db")
@known_random_build
def test_postmaster_crash_keeps_rows_and_recall(vector_stack, baseline):
    """kill -9 of the postmaster: no shutdown checkpoint, WAL replay on start (dumb-init exits with postgres,
    nothing restarts the container, so the fault's heal starts it)."""
    h = History()
    with allure.step("inject: kill -9 of the postmaster"):
        t0 = time.monotonic()
        with ProcessKilled(vector.CONTAINER, pidfile=vector.PIDFILE, restart=True, history=h):
            wait_for(
                lambda: not vector.accepts_queries(),
                within=TIMEOUTS.statement * 5,
                what="vector DB stops answering after kill -9",
                every=0.2,
            )
    verify_after(vector_stack, "postmaster_crash", baseline, t0)


@pytest.mark.faults("Killed@vector-db")
@known_random_build
def test_container_sigkill_keeps_rows_and_recall(vector_stack, baseline):
    """SIGKILL of the container's PID 1: every postgres process dies at once; heal starts the container."""
    with allure.step("inject: docker kill (SIGKILL)"):
        t0 = time.monotonic()
        with Killed(vector.CONTAINER, signal="SIGKILL", history=History()):
            assert not vector.accepts_queries(), "vector DB still answers with its container killed"
    verify_after(vector_stack, "container_kill", baseline, t0)


@pytest.mark.faults("ServiceRestarted@vector-db")
@known_random_build
def test_container_restart_keeps_rows_and_recall(vector_stack, baseline):
    """docker restart: fast shutdown (STOPSIGNAL SIGINT, checkpoint), then start."""
    with allure.step("inject: docker restart"):
        t0 = time.monotonic()
        with ServiceRestarted(vector.CONTAINER, history=History()):
            pass
    verify_after(vector_stack, "container_restart", baseline, t0)


@pytest.mark.faults()  # reads only; destructive with its module (it measures a deliberately degraded search)
def test_recall_check_catches_a_degraded_search(vector_stack):
    """The recall check can fail: with hnsw.ef_search=1 the index returns too few true neighbours, measured."""
    bound = vector.min_recall()
    with allure.step("measure recall@10 at hnsw.ef_search = 1"):
        rec = vector.measure_recall(ef_search=1)
        evidence.attach_json("recall ef_search=1", asdict(rec))
    assert rec.recall < bound.value, (
        f"recall@10 with ef_search=1 is {rec.recall:.3f}, not below the floor "
        f"{bound.value}: the floor cannot tell a degraded index from a good one"
    )
