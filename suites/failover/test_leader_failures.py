"""What happens to writes when the Patroni leader fails, per kind of fault and per entry point.

Each test: steady state -> inject -> observe (new leader, writes resume) -> heal -> verify (healthy cluster,
write gap within the fault's SLO, no lost / phantom / duplicate write, no split brain).
"""

from __future__ import annotations

import contextlib
import time

import allure
import pytest

from chaos.checkers.slo import member_probe_timeout_ms
from chaos.faults import Killed, Switchover
from topology.names import PATRONI_NODES, container

from .conftest import (
    LEADER_FAULTS,
    PINNED,
    PROBE_FLOOR,
    SLOBreach,
    SplitBrainFound,
    assert_failover_ok,
    async_loss_bound,
)

#: experiments hold the run's Patroni settings (the opt-in member probe) as a DynamicConfigChanged fault
pytestmark = [
    pytest.mark.faults("DynamicConfigChanged@patroni-api"),
    pytest.mark.destructive,
    allure.parent_suite("failover"),
    allure.suite("leader failures"),
]


@pytest.mark.faults("Switchover@patroni-api")
@allure.title("planned switchover keeps every entry point within the soft-fault SLO")
def test_switchover_meets_slo(experiment):
    result = experiment("switchover").run(LEADER_FAULTS["switchover"])
    assert result.timeline_after > result.timeline_before, "timeline did not advance"
    assert_failover_ok(result)


@pytest.mark.faults("Stopped@patroni-leader")
@allure.title("graceful stop of the leader (docker stop) fails over within the soft-fault SLO")
def test_graceful_stop_of_leader_meets_slo(experiment):
    result = experiment("graceful_stop").run(LEADER_FAULTS["graceful_stop"])
    assert result.timeline_after > result.timeline_before
    assert_failover_ok(result)


@pytest.mark.faults("ProcessKilled@patroni-leader")
@allure.title("postmaster crash (kill -9) on the leader: Patroni fails over at once, nothing lost")
def test_postmaster_crash_fails_over(experiment):
    # primary_start_timeout=0: Patroni must not try a local restart first (that left a leader reporting
    # "Error communicating with PostgreSQL" for minutes in an earlier trial; the health gate would catch it)
    result = experiment("postmaster_crash").run(LEADER_FAULTS["postmaster_crash"])
    assert result.new_leader != result.old_leader, "Patroni restarted PostgreSQL in place instead of failing over"
    # asynchronous replication: a write acknowledged just before the crash may not have reached a replica
    assert_failover_ok(result, allow_loss=async_loss_bound())


@pytest.mark.faults("Killed@patroni-leader")
@pytest.mark.lease_bound
@allure.title("hard kill of the leader container: failover bounded by ttl, no acknowledged write lost")
def test_hard_kill_of_leader(experiment):
    result = experiment("hard_kill").run(LEADER_FAULTS["hard_kill"])
    assert_failover_ok(result, allow_loss=async_loss_bound())


@pytest.mark.faults("Isolated@patroni-leader")
@pytest.mark.lease_bound
@allure.title("leader isolated from etcd and its peers demotes itself: no split brain")
def test_isolated_leader_demotes(experiment):
    result = experiment("isolation", pin_leader=True).run(LEADER_FAULTS["isolation"])
    # the isolated leader keeps acknowledging until it demotes (retry_timeout); with asynchronous replication
    # those writes never reach a replica and are lost: bounded by maximum_lag_on_failover, zero in sync mode
    assert_failover_ok(result, allow_loss=async_loss_bound())


@pytest.mark.faults("Paused@patroni-leader")
@pytest.mark.lease_bound
@allure.title("frozen leader (docker pause) must not accept writes after a new leader exists")
@pytest.mark.xfail(
    raises=SplitBrainFound,
    strict=True,
    reason=(
        "known with asynchronous replication (shared/notes/failover-baseline.md, 3 of 3 runs): after unfreeze the "
        "deposed leader commits the in-flight write before Patroni demotes it; no watchdog exists in containers. "
        "synchronous_mode prevents it (test below). Only the split-brain finding is expected: a setup error, an "
        "unhealthy cluster or loss beyond maximum_lag_on_failover still fails."
    ),
)
def test_frozen_leader_accepts_no_late_writes(experiment):
    result = experiment("freeze", pin_leader=True).run(LEADER_FAULTS["freeze"])
    # asynchronous replication: what the frozen leader acknowledged last may not have reached a replica
    assert_failover_ok(result, allow_loss=async_loss_bound())


@pytest.mark.faults("Killed@patroni-replica")
@allure.title("loss of a replica does not disturb writes")
def test_replica_loss_does_not_disturb_writes(experiment, cluster):
    replica = cluster.replicas()[0]
    result = experiment("replica_loss", expect_new_leader=False).run(
        lambda leader, h: Killed(container(replica), history=h)
    )
    assert result.new_leader == result.old_leader, "losing a replica changed the leader"
    reads_after = [o for o in result.history.ops(kind="read", outcome="ok") if o.node and o.node != replica]
    assert reads_after, "the RO path never answered from the remaining replica"
    assert_failover_ok(result)


@pytest.mark.faults("Switchover@patroni-api")
@allure.title("two switchovers in a row, each within the soft-fault SLO")
def test_two_failovers_in_a_row(experiment, cluster):
    @contextlib.contextmanager
    def two_switchovers(leader, h):
        first, second = [n for n in PATRONI_NODES if n != leader]
        with Switchover(candidate=first, history=h):
            pass
        time.sleep(3)  # writes resume on `first` before the second change
        with Switchover(candidate=second, history=h):
            yield

    result = experiment("double_failover").run(two_switchovers)
    assert result.timeline_after >= result.timeline_before + 2, "expected two timeline switches"
    assert_failover_ok(result)


@pytest.mark.faults(
    "Killed@patroni-leader", "Isolated@patroni-leader", "Paused@patroni-leader", "DynamicConfigChanged@patroni-api"
)
@pytest.mark.lease_bound
@allure.title("synchronous_mode: zero acknowledged writes lost under {fault}")
@pytest.mark.slow
@pytest.mark.parametrize("fault", ["hard_kill", "isolation", "freeze"])
def test_synchronous_mode_loses_nothing(experiment, synchronous_mode, fault, request):
    """Loss must be zero for all three; isolation and freeze sit ~1 s under their bound (PROBE_FLOOR)."""
    if fault in ("isolation", "freeze") and member_probe_timeout_ms() >= 2000:  # with a shorter probe: strict
        request.applymarker(pytest.mark.xfail(raises=SLOBreach, strict=False, reason=PROBE_FLOOR))
    result = experiment(fault, pin_leader=fault in PINNED).run(LEADER_FAULTS[fault])
    assert_failover_ok(result)
