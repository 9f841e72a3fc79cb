"""Drill 2, total loss of the Patroni cluster: every node's data and the etcd state are destroyed; the cluster
is rebuilt from the repository (Patroni bootstrap method `pgbackrest`), replicas are re-created, writes resume.

RTO by phase, from the loss to writes accepted and to a healthy cluster; RPO from the heartbeat (what was not
archived yet is lost: bounded by archive_timeout); the static tables equal their last archived state and the
cluster keeps its system identifier.
"""

from __future__ import annotations

import os

import allure
import pytest

from chaos.experiments.disasters import destroy_patroni_cluster, rebuild_patroni
from chaos.experiments.drill import HEARTBEAT_READ, HEARTBEAT_UPSERT, Heartbeat, fingerprints, live_query, rpo_seconds
from topology.health import assert_healthy
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

from .conftest import primary

pytestmark = [
    pytest.mark.faults("Disaster@stack:patroni"),
    pytest.mark.dr,
    pytest.mark.destructive,
    allure.parent_suite("dr"),
    allure.suite("total loss"),
]

SYSID = "SELECT system_identifier::text FROM pg_control_system()"
#: The RPO bound: archive_timeout forces a segment switch; the margin covers the push to the repository and the
#: heartbeat's own 1 s period.
RPO_MARGIN_S = 10.0


def archive_timeout_s() -> float:
    raw = os.environ.get("DPG_ARCHIVE_TIMEOUT", "30s").strip()
    return float(raw[:-1]) if raw.endswith("s") else float(raw)


@allure.title("total loss: rebuild from the newest backup, replicas re-created, writes accepted")
def test_total_loss_rebuilt_from_backup(repo, has_backup, dr_data, drill, patroni_stack):
    client, run = patroni_stack, live_query(primary())
    sysid = run(SYSID)
    with Heartbeat(primary()) as hb:
        assert hb.wait_beats(3), "heartbeat never acknowledged"
        with drill.phase("incremental backup before the loss"):
            repo.backup("incr")
        source = fingerprints(run, dr_data)
        with drill.phase("archive the state to compare with"):
            repo.check()
        hb.wait_beats(5)
        with drill.phase("total loss: Patroni nodes and etcd destroyed with their data"):
            destroyed = destroy_patroni_cluster(client)
    last_acked = hb.last_acked
    try:
        with drill.phase("rebuild: new etcd, Patroni bootstraps from the newest backup"):
            rebuild_patroni(client, DPG_BOOTSTRAP_METHOD="pgbackrest")
            wait_for(
                lambda: run("SELECT NOT pg_is_in_recovery()"),
                within=TIMEOUTS.restore,
                what="a primary restored from the backup behind HAProxy",
                every=1,
            )
        restored_beat = float(run(HEARTBEAT_READ))
        with drill.phase("writes accepted"):
            wait_for(lambda: run(HEARTBEAT_UPSERT), within=TIMEOUTS.failover, what="a write through HAProxy")
        with drill.phase("replicas re-created and streaming"):
            assert_healthy(client, ["patroni"], within=TIMEOUTS.restore)
        restored = fingerprints(run, dr_data)
        sysid_after = run(SYSID)
        with drill.phase("archiving resumed on the new timeline"):
            repo.check()
    finally:
        with drill.phase("back to the default bootstrap configuration"):
            rebuild_patroni(client)
            assert_healthy(client, ["patroni"], within=TIMEOUTS.restore)
    rpo = rpo_seconds(last_acked, restored_beat)
    drill.report(
        rto_s=drill.span("rebuild: new etcd, Patroni bootstraps from the newest backup", "writes accepted"),
        rpo_s=rpo,
        rto_healthy_s=drill.span(
            "rebuild: new etcd, Patroni bootstraps from the newest backup", "replicas re-created and streaming"
        ),
        destroyed=destroyed,
        heartbeats_failed=hb.failed,
        archive_timeout_s=archive_timeout_s(),
    )
    assert sysid_after == sysid, f"a new cluster was created (system identifier {sysid} -> {sysid_after})"
    assert restored == source, f"restored tables differ from the last archived state: {restored} != {source}"
    assert rpo is not None and rpo <= archive_timeout_s() + RPO_MARGIN_S, (
        f"RPO {rpo} s exceeds archive_timeout {archive_timeout_s()} s + {RPO_MARGIN_S} s"
    )
