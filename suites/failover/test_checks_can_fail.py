"""The suite's own checks must be able to go red: a deliberately bad router setting is caught.

(The checkers' ability to flag loss, duplicates and split brain is proven on hand-made histories in
suites/unit/test_checker.py; this is the end-to-end half, against the running cluster.)
"""

from __future__ import annotations

import time
from dataclasses import replace

import allure
import pytest

from chaos.checkers.writes import write_gap
from chaos.clients.probes import Workload
from chaos.experiments.evidence import attach_history
from chaos.experiments.failover import node_of_ip
from chaos.faults import Reconfigured
from topology import endpoints, evidence, health
from topology.health import assert_healthy, haproxy_backend
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

pytestmark = [pytest.mark.destructive, allure.parent_suite("failover"), allure.suite("checks can fail")]


@pytest.mark.faults("Reconfigured@stack:patroni")
@allure.title("HAProxy checking /health instead of /primary is caught: gate red, writes refused by replicas")
def test_misrouting_haproxy_is_caught(write_paths_stacks):
    client = write_paths_stacks
    with allure.step("steady state"):
        assert_healthy(client, ["patroni"])
    with Reconfigured("patroni", {"DPG_HAPROXY_RW_CHECK": "/health"}):
        with allure.step("HAProxy now marks every node UP for writes"):
            wait_for(
                lambda: sum(s.startswith("UP") for s in haproxy_backend("primary").values()) == 3,
                within=TIMEOUTS.router_follow * 2,
                what="3 servers UP in the RW backend",
            )
        with allure.step("the health gate names the problem"):
            problems = health.problems(client, "patroni")
            assert any("HAProxy RW backend" in p for p in problems), problems
        with allure.step("writes through HAProxy hit read-only replicas"):
            # three writers: HAProxy balances their connections round-robin over the three "UP" servers,
            # so at least two of them land on a replica (one writer alone may stick to the leader)
            writers = [replace(endpoints.haproxy(), name=f"haproxy-{i}") for i in range(3)]
            workload = Workload(writers, node_of=node_of_ip(), max_seconds=30)
            with workload.running() as history:
                time.sleep(3)
            attach_history("misrouted haproxy", history)
            refused = [o for o in history.ops(outcome="fail") if "ReadOnly" in (o.error or "")]
            evidence.attach_json("gaps", {w.name: write_gap(history, w.name).to_dict() for w in writers})
            assert refused, "no write was refused by a replica: the misrouting went unnoticed"
    with allure.step("healed: the gate is green again"):
        assert_healthy(client, ["patroni", "pgbouncer", "traefik"], within=TIMEOUTS.cluster_ready)
