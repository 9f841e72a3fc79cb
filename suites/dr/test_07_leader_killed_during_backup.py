"""Drill 7, the leader is killed while a full backup runs: the backup fails cleanly (a clear error, no backup
recorded as valid) or completes; the next backup, taken from the new leader, succeeds and verifies."""

from __future__ import annotations

import threading

import allure
import pytest

from chaos.experiments.drill import live_query
from chaos.faults import Killed
from topology.backup import mark_segment_done, stale_segment_blocking_archive
from topology.health import assert_healthy
from topology.names import container
from topology.patroni import PatroniCluster
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

from .conftest import superuser

pytestmark = [
    pytest.mark.faults("Disaster@stack:patroni"),
    pytest.mark.dr,
    pytest.mark.destructive,
    allure.parent_suite("dr"),
    allure.suite("leader killed during backup"),
]


class ArchiverStuckOnStaleSegment(AssertionError):
    """The new leader's archiver was stuck on a segment that lies past the end of its timeline."""


#: a slower backup (one process, gzip level 9) so the kill lands while files are being copied
SLOW_BACKUP = ("--process-max=1", "--compress-type=gz", "--compress-level=9")


@pytest.mark.faults("Killed@patroni-leader")
@allure.title("leader killed during a full backup: clean failure or completion, the next backup verifies")
@pytest.mark.xfail(
    raises=ArchiverStuckOnStaleSegment,
    strict=False,
    reason="seen in CI on 2026-11-26 (1 run; passed in every earlier run): the replica promoted during "
    "the backup was in the middle of a spread restartpoint; it finished 2 s after promotion and "
    "marked an old recycled file (000000020000000000000022, past the end of timeline 2) .ready; "
    "pgBackRest refuses it ('[029] first page header in WAL file is expected to be in long "
    "format'), so the archiver stops there and every backup fails ('[082] WAL segment ... was "
    "not archived'). The drill then applies the remedy (mark that segment archived) and the "
    "backup must succeed and verify; any other failure still fails the drill.",
)
def test_leader_killed_during_backup(repo, has_backup, dr_data, drill, patroni_stack):
    cluster = PatroniCluster(patroni_stack)
    leader = cluster.leader()
    labels_before = {b.label for b in repo.backups()}
    outcome: dict = {}
    worker = threading.Thread(
        target=lambda: outcome.update(r=repo.backup("full", *SLOW_BACKUP, check=False)), daemon=True
    )
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
    stale = None if nxt.ok else stale_segment_blocking_archive(live_query(superuser()))
    if stale:
        allure.attach(nxt.output, name="next backup, failed", attachment_type=allure.attachment_type.TEXT)
        with drill.phase("remedy: the stale segment marked archived, backup retried"):
            mark_segment_done(patroni_stack, cluster.leader(), stale)
            nxt = repo.backup("full", check=False)
    with drill.phase("verify"):
        verdict = repo.verify()
    drill.report(
        rto_s=drill.phases["next backup from the new leader"],
        rpo_s=None,
        killed=leader,
        outcome="completed" if result.ok else "failed",
        error=next((line.strip() for line in result.output.splitlines() if "ERROR" in line), None),
        interrupted_backup_s=round(result.seconds, 1),
        stale_segment=stale,
    )
    if result.ok:
        assert new, "the backup reported success but no new backup is listed"
    else:
        assert "ERROR" in result.output, f"the backup failed without a clear error: {result.output[-500:]}"
        assert not new, f"a failed backup is listed in the repository: {[b.label for b in new]}"
    assert nxt.ok, f"the next backup failed: {nxt.output[-800:]}"
    assert verdict.ok, "verify after the interrupted backup: " + "; ".join(verdict.errors)
    if stale:
        raise ArchiverStuckOnStaleSegment(
            f"the new leader's archiver was stuck on {stale}, past the end of its timeline; backups succeeded "
            "only after it was marked archived"
        )
