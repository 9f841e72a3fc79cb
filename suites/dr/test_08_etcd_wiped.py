"""Drill 8, the DCS is lost: all etcd members and their data are destroyed and re-created empty. Patroni must
re-register the existing cluster (same system identifier) from the surviving PostgreSQL data, without losing an
acknowledged write."""

from __future__ import annotations

import allure
import pytest

from chaos.checkers.writes import check_set, write_gap
from chaos.clients.probes import Workload, final_read
from chaos.experiments.disasters import rebuild_patroni, wipe_etcd
from chaos.experiments.drill import fingerprints, live_query
from topology import endpoints
from topology.health import assert_healthy
from topology.names import ETCD_MEMBERS
from topology.patroni import PatroniCluster
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

from .conftest import primary

pytestmark = [
    pytest.mark.faults("Disaster@stack:patroni"),
    pytest.mark.dr,
    pytest.mark.destructive,
    allure.parent_suite("dr"),
    allure.suite("etcd wiped"),
]

SYSID = "SELECT system_identifier::text FROM pg_control_system()"


@allure.title("etcd wiped: Patroni recovers its cluster, same system identifier, no acknowledged write lost")
def test_etcd_wiped_cluster_recovers(patroni_stack, dr_data, drill):
    client, run = patroni_stack, live_query(primary())
    cluster = PatroniCluster(client)
    sysid, source = run(SYSID), fingerprints(run, dr_data)
    workload = Workload([endpoints.haproxy()], max_seconds=600)
    with workload.running() as history:
        assert workload.wait_acks("haproxy", 20), "no steady state before the wipe"
        with drill.phase("etcd wiped: members and data destroyed"):
            wipe_etcd(client)
        with drill.phase("etcd re-created empty"):
            rebuild_patroni(client, ETCD_MEMBERS)
        with drill.phase("Patroni re-registers the cluster, writes accepted"):
            wait_for(
                lambda: cluster.leader_in_dcs(), within=TIMEOUTS.cluster_ready, what="a leader key in the new etcd"
            )
            assert workload.wait_acks("haproxy", 10, within=TIMEOUTS.cluster_ready), "writes never resumed"
        with drill.phase("cluster healthy"):
            assert_healthy(client, ["patroni"], within=TIMEOUTS.rejoin)
    final = final_read(endpoints.haproxy(), workload.run_id)
    verdict, gap = check_set(history, final), write_gap(history, "haproxy")
    sysid_after, restored = run(SYSID), fingerprints(run, dr_data)
    drill.report(
        rto_s=round((gap.longest_gap_ms or 0) / 1000, 2),
        rpo_s=0.0 if not verdict.lost else None,
        lost_writes=len(verdict.lost),
        acknowledged=len(verdict.acknowledged),
        rto_to_healthy_s=drill.span("etcd wiped: members and data destroyed", "cluster healthy"),
    )
    assert sysid_after == sysid, f"Patroni created a new cluster: system identifier {sysid} -> {sysid_after}"
    assert not verdict.lost, f"{len(verdict.lost)} acknowledged writes lost: {sorted(verdict.lost)[:10]}"
    assert not verdict.duplicates and not verdict.unexpected, verdict.to_dict()
    assert restored == source
