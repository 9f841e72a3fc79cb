"""The coordinator goes away (docker stop, SIGKILL) and comes back.

Properties: while it is down, clients cannot reach it (fresh connections fail, bounded by connect_timeout)
and the workers, which hold the synced metadata, still answer distributed queries themselves: the row count
and the co-located join through worker-1 equal what the coordinator answered before. After it is back (crash
recovery included for SIGKILL): fingerprints, join, 16/16 placements and reference reads through every node
equal what they were before; the health gate is green.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import allure
import pytest

from chaos.faults import Killed, Stopped
from chaos.history import History
from topology import evidence
from topology.citus import COLOCATED_JOIN, COORDINATOR, WORKERS, timed_fresh
from topology.health import assert_healthy
from topology.names import container
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

from .scenario import MULTI_SHARD_SQL, describe, snapshot_diff

pytestmark = [pytest.mark.citus, pytest.mark.destructive]

FAULTS = {
    "stop": lambda h: Stopped(container(COORDINATOR), history=h),
    "kill": lambda h: Killed(container(COORDINATOR), history=h),
}


@pytest.mark.faults("Stopped@citus-coordinator", "Killed@citus-coordinator")
@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_coordinator_down_workers_still_answer_and_nothing_is_lost(kind, citus, bounds, citus_stack):
    via = WORKERS[0]
    with allure.step("steady state: healthy; snapshot"):
        assert_healthy(citus_stack, ["citus"])
        before = citus.snapshot()
    history = History()
    with allure.step(f"inject: coordinator {kind}"), FAULTS[kind](history) as f:
        coordinator = timed_fresh(COORDINATOR, "SELECT 1", what="connect to the coordinator")
        count = timed_fresh(
            via, MULTI_SHARD_SQL, what=f"multi-shard count via {via}", statement_timeout_ms=bounds.client_timeout_ms
        )
        join = timed_fresh(
            via, COLOCATED_JOIN, what=f"co-located join via {via}", statement_timeout_ms=bounds.client_timeout_ms
        )
    with allure.step("heal: the coordinator answers distributed queries again"):
        t_heal = time.monotonic()
        wait_for(
            lambda: timed_fresh(COORDINATOR, MULTI_SHARD_SQL, statement_timeout_ms=5000).ok,
            within=TIMEOUTS.citus_recover,
            what=f"coordinator back after {kind}",
        )
        recovered_s = time.monotonic() - t_heal
    evidence.attach_json(
        "during the fault",
        {
            "coordinator": asdict(coordinator),
            "count": asdict(count),
            "join": {**asdict(join), "rows": len(join.rows)},
            "fault_events": [asdict(e) for e in f.events],
        },
    )
    evidence.record_measurement(
        "citus_coordinator_down",
        fault=kind,
        via=via,
        count_ms=round(count.ms, 1),
        join_ms=round(join.ms, 1),
        count_ok=count.ok,
        join_ok=join.ok,
        recovered_s=round(recovered_s, 2),
    )
    with allure.step("verify: the coordinator was really down"):
        assert not coordinator.ok, f"the coordinator answered during {kind}: {coordinator}"
    with allure.step(f"verify: {via} answered distributed queries with the coordinator's answers"):
        users = before["fingerprints"]["distributed.users"][0]
        assert count.ok and count.rows == ((users,),), f"count via {via}: {count}"
        assert join.ok and [tuple(r) for r in join.rows] == before["colocated_join"], (
            f"co-located join via {via} differs or failed: {join.error or 'different rows'}"
        )
    with allure.step("verify after heal: everything as before"):
        after = citus.snapshot()
        diff = snapshot_diff(before, after)
        evidence.attach_json("snapshot after heal", {"diff": diff, "cluster": describe(citus)})
        assert not diff, f"changed by the fault: {diff}"
    with allure.step("final health gate"):
        assert_healthy(citus_stack, ["citus"], within=TIMEOUTS.citus_recover)
