"""Drill 7, the leader is killed while a full backup runs: the backup fails cleanly (a clear error, no backup
recorded as valid) or completes; the next backup, taken from the new leader, succeeds and verifies."""
from __future__ import annotations

import threading

import allure
import pytest

from chaos.faults import Killed
from topology.health import assert_healthy
from topology.names import container
from topology.patroni import PatroniCluster
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

pytestmark = [pytest.mark.dr, pytest.mark.destructive, allure.parent_suite("dr"), allure.suite("leader killed during backup")]

#: a slower backup (one process, gzip level 9) so the kill lands while files are being copied
SLOW_BACKUP = ("--process-max=1", "--compress-type=gz", "--compress-level=9")


@allure.title("leader killed during a full backup: clean failure or completion, the next backup verifies")
def test_leader_killed_during_backup(repo, has_backup, dr_data, drill, patroni_stack):
    cluster = PatroniCluster(patroni_stack)
    leader = cluster.leader()
    labels_before = {b.label for b in repo.backups()}
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(r=repo.backup("full", *SLOW_BACKUP, check=False)),
                              daemon=True)
    with drill.phase("backup started"):
        worker.start()
        wait_for(repo.backup_running, within=60, what="the backup holds its lock", every=0.2)
    with Killed(container(leader)):
        with drill.phase("leader killed, new leader elected"):
            wait_for(lambda: cluster.leader() not in (None, leader), within=TIMEOUTS.failover, what="a new leader")
        with drill.phase("backup ends"):
            worker.join(timeout=TIMEOUTS.backup)
    assert not worker.is_alive(), "the backup still runs after the backup timeout"
    result = outcome["r"]
    allure.attach(result.output, name="backup during the kill", attachment_type=allure.attachment_type.TEXT)
    new = [b for b in repo.backups() if b.label not in labels_before]
    with drill.phase("cluster healthy again"):
        wait_for(lambda: cluster.leader() is not None, within=TIMEOUTS.failover, what="a leader")
        assert_healthy(patroni_stack, ["patroni"], within=TIMEOUTS.rejoin)
    with drill.phase("next backup from the new leader"):
        nxt = repo.backup("full", check=False)
    with drill.phase("verify"):
        verdict = repo.verify()
    drill.report(rto_s=drill.phases["next backup from the new leader"], rpo_s=None, killed=leader,
                 outcome="completed" if result.ok else "failed",
                 error=next((line.strip() for line in result.output.splitlines() if "ERROR" in line), None),
                 interrupted_backup_s=round(result.seconds, 1))
    if result.ok:
        assert new, "the backup reported success but no new backup is listed"
    else:
        assert "ERROR" in result.output, f"the backup failed without a clear error: {result.output[-500:]}"
        assert not new, f"a failed backup is listed in the repository: {[b.label for b in new]}"
    assert nxt.ok, f"the next backup failed: {nxt.output[-800:]}"
    assert verdict.ok, "verify after the interrupted backup: " + "; ".join(verdict.errors)
