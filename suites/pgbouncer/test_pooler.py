"""PgBouncer, the pooler in front of the Patroni primary: failover through it, its client limit, its pool queue,
reload and restart.

PgBouncer reaches the primary through HAProxy, so its failover gap is HAProxy's gap plus the pooler's own share
(dropping dead server connections and opening new ones); the share is measured, not assumed.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time

import allure
import pytest

from chaos.checkers.slo import limit
from chaos.checkers.writes import write_gap
from chaos.clients.probes import Workload
from chaos.clients.sessions import concurrent_statements, held_sessions
from chaos.experiments.evidence import attach_history
from chaos.faults import Killed, ServiceReloaded, ServiceRestarted, Switchover
from suites.failover.conftest import assert_failover_ok, async_loss_bound
from topology import endpoints, evidence, pgbouncer
from topology.health import assert_healthy
from topology.names import container

#: experiments hold the run's Patroni settings (the opt-in member probe) as a DynamicConfigChanged fault
pytestmark = [
    pytest.mark.faults("DynamicConfigChanged@patroni-api"),
    allure.parent_suite("pgbouncer"),
    allure.suite("pooler"),
]

FAULTS = {
    "switchover": (lambda leader, h: Switchover(history=h), 0),
    "hard_kill": (lambda leader, h: Killed(container(leader), history=h), None),
}


@pytest.mark.faults("Switchover@patroni-api", "Killed@patroni-leader")
@allure.title("failover through PgBouncer ({fault}): gap within SLO, the pooler's own share measured")
@pytest.mark.destructive
@pytest.mark.parametrize("fault", list(FAULTS))
def test_failover_through_pooler(experiment, fault):
    inject, loss = FAULTS[fault]
    result = experiment(fault, entry_points=[endpoints.haproxy(), endpoints.pgbouncer()]).run(inject)
    direct, pooled = result.gaps["haproxy"].longest_gap_ms, result.gaps["pgbouncer"].longest_gap_ms
    assert direct is not None and pooled is not None, "a gap could not be measured"
    share = limit("pgbouncer_share")
    evidence.record_measurement(
        "pgbouncer_share",
        fault=fault,
        haproxy_gap_ms=direct,
        pgbouncer_gap_ms=pooled,
        share_ms=pooled - direct,
        bound_ms=share.bound_ms,
    )
    allure.dynamic.description(
        f"HAProxy gap {direct:.0f} ms, PgBouncer gap {pooled:.0f} ms: the pooler's own share {pooled - direct:.0f} ms"
    )
    assert_failover_ok(result, allow_loss=async_loss_bound() if loss is None else loss)
    assert pooled - direct <= share.bound_ms, (
        f"PgBouncer added {pooled - direct:.0f} ms to HAProxy's {direct:.0f} ms gap > {share.bound_ms:.0f} ms "
        f"({share.source})"
    )


@pytest.mark.faults("Saturated@pgbouncer")
@allure.title("client max_client_conn+1 is refused at once with a clear error; the others keep working")
@pytest.mark.destructive  # holds every client slot of the pooler: no other test may use it meanwhile
def test_client_beyond_max_client_conn_is_refused_quickly(write_paths_stacks):
    cap = pgbouncer.setting("max_client_conn")
    bound = limit("pgbouncer_refusal")
    with held_sessions(endpoints.pgbouncer(), cap + 1) as (conns, attempts):
        evidence.attach_json("attempts", [a.__dict__ for a in attempts])
        accepted = [a for a in attempts if a.ok]
        refused = [a for a in attempts if not a.ok]
        assert len(accepted) == cap, f"{len(accepted)} clients accepted, max_client_conn = {cap}"
        assert len(refused) == 1 and refused[0].index == cap, f"refused: {refused}"
        extra = refused[0]
        evidence.record_measurement("pgbouncer_refusal", clients=cap, refusal_s=extra.seconds, error=extra.error)
        assert "max_client_conn" in extra.error, f"client {cap + 1} got an unclear answer: {extra.error!r}"
        assert extra.seconds * 1000 <= bound.bound_ms, (
            f"the refusal took {extra.seconds * 1000:.0f} ms > {bound.bound_ms:.0f} ms ({bound.source})"
        )
        broken = [i for i, c in enumerate(conns) if not _answers(c)]
        assert not broken, f"sessions {broken} stopped answering after the refusal"
        conns.pop().close()
    with held_sessions(endpoints.pgbouncer(), 1) as (_, again):
        assert again[0].ok, f"a new client is still refused once a slot is free: {again[0].error}"


def _answers(conn) -> bool:
    try:
        return conn.execute("SELECT 1").fetchone()[0] == 1
    except Exception:
        return False


@pytest.mark.faults("Saturated@pgbouncer")
@allure.title("more concurrent transactions than pool slots: the excess queues and drains, nothing hangs")
@pytest.mark.destructive  # fills the pool: other clients would queue behind it
def test_transactions_beyond_pool_size_queue_and_drain(write_paths_stacks):
    pool_size, wait_timeout = pgbouncer.setting("default_pool_size"), pgbouncer.setting("query_wait_timeout")
    clients, hold = min(pgbouncer.setting("max_client_conn") - 5, 2 * pool_size + 10), 1.0
    waves = math.ceil(clients / pool_size)
    seen_waiting: list[int] = []
    stop = threading.Event()

    def watch_pool() -> None:  # the admin console shows the queue (cl_waiting) while it exists
        while not stop.is_set():
            with contextlib.suppress(Exception):
                seen_waiting.append(int(pgbouncer.pool().get("cl_waiting", 0)))
            stop.wait(0.2)

    watcher = threading.Thread(target=watch_pool, daemon=True)
    watcher.start()
    try:
        attempts = concurrent_statements(
            endpoints.pgbouncer(), clients, f"SELECT pg_sleep({hold})", deadline=wait_timeout + waves * hold + 10
        )
    finally:
        stop.set()
        watcher.join(timeout=5)
    slowest = max(a.seconds for a in attempts)
    evidence.record_measurement(
        "pgbouncer_queue",
        clients=clients,
        pool_size=pool_size,
        hold_s=hold,
        slowest_s=slowest,
        max_cl_waiting=max(seen_waiting, default=0),
        failed=sum(not a.ok for a in attempts),
    )
    assert all(a.ok for a in attempts), f"failed: {[a.error for a in attempts if not a.ok][:3]}"
    assert max(seen_waiting, default=0) > 0, "no client ever waited: the pool did not limit anything"
    # queued work drains in waves of pool_size; far beyond that (or query_wait_timeout) would be a hang
    assert slowest <= waves * hold + 2.0, f"slowest client took {slowest:.1f} s for {waves} waves of {hold} s"
    assert slowest < wait_timeout, f"a client waited {slowest:.1f} s, query_wait_timeout is {wait_timeout} s"


@pytest.mark.faults("ServiceReloaded@pgbouncer")
@allure.title("online reload (SIGHUP) keeps every client session working")
@pytest.mark.destructive
def test_reload_keeps_clients(write_paths_stacks):
    workload = Workload([endpoints.pgbouncer()], max_seconds=60)
    with workload.running() as history:
        assert workload.wait_acks("pgbouncer", 10, within=10)
        with ServiceReloaded(container("pgbouncer"), "SIGHUP", history=history):
            pass
        assert workload.wait_acks("pgbouncer", 20, within=10), "writes did not continue after the reload"
    failed = history.ops(probe="pgbouncer", kind="write", outcome="fail")
    attach_history("pgbouncer reload", history)
    assert not failed, f"{len(failed)} writes failed across a reload: {failed[0].error}"
    assert_healthy(write_paths_stacks, ["pgbouncer"])


@pytest.mark.faults("ServiceRestarted@pgbouncer")
@allure.title("restart of PgBouncer: sessions dropped, new connections succeed within the bound")
@pytest.mark.destructive
def test_restart_recovers_within_bound(write_paths_stacks):
    bound = limit("pgbouncer_restart_resume")
    workload = Workload([endpoints.pgbouncer()], max_seconds=90)
    with workload.running() as history:
        assert workload.wait_acks("pgbouncer", 10, within=10)
        started = time.monotonic()
        with ServiceRestarted(container("pgbouncer"), history=history):
            pass
        assert workload.wait_acks("pgbouncer", 5, within=bound.bound_ms / 1000 + 10), "writes never resumed"
    gap = write_gap(history, "pgbouncer", after=started)
    attach_history("pgbouncer restart", history)
    evidence.record_measurement(
        "pgbouncer_restart", gap_ms=gap.longest_gap_ms, bound_ms=bound.bound_ms, failed=gap.fail + gap.info
    )
    assert gap.fail + gap.info > 0, "no write failed: the restart did not drop the sessions"
    assert gap.longest_gap_ms <= bound.bound_ms, (
        f"writes stopped {gap.longest_gap_ms:.0f} ms across a restart > {bound.bound_ms:.0f} ms ({bound.source})"
    )
    assert_healthy(write_paths_stacks, ["pgbouncer"])
