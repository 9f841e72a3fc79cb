"""Drill 6, archive outage: the repository host is unreachable (disconnected from the network). Archiving fails
visibly (pg_stat_archiver), WAL piles up in pg_wal (measured); after heal the archive catches up with no gap."""

from __future__ import annotations

import json

import allure
import pytest

from chaos.experiments.drill import live_query
from chaos.faults import Disconnected
from topology.backup import ARCHIVER_SQL, REPO_SERVICE, SEGMENT_BYTES_SQL, segment_range
from topology.names import container
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

from .conftest import primary, superuser

pytestmark = [
    pytest.mark.faults("Disaster@stack:patroni"),
    pytest.mark.dr,
    pytest.mark.destructive,
    allure.parent_suite("dr"),
    allure.suite("archive outage"),
]

SEGMENTS_DURING_OUTAGE = 5
WAL_BYTES = "SELECT sum(size)::bigint FROM pg_ls_waldir()"
READY = "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
SEGMENT = "SELECT pg_walfile_name(pg_current_wal_lsn())"


@pytest.mark.faults("Disconnected@pgbackrest")
@allure.title("repository unreachable: archiving fails visibly, pg_wal grows, the archive catches up gap-free")
def test_archive_outage_is_visible_and_catches_up(repo, has_backup, dr_data, drill):
    run, su = live_query(primary()), live_query(superuser())
    archiver = lambda: json.loads(su(ARCHIVER_SQL))  # noqa: E731
    repo.check()
    first = su(SEGMENT)
    before, wal_before = archiver(), int(su(WAL_BYTES))
    with Disconnected(container(REPO_SERVICE)):
        with drill.phase("outage: WAL produced while the repository is unreachable"):
            for i in range(SEGMENTS_DURING_OUTAGE):
                run(f"UPDATE dr.ledger SET note = note WHERE id % 10 = {i}")
                su("SELECT pg_switch_wal()")
        with drill.phase("archive failure visible in pg_stat_archiver"):
            during = wait_for(
                lambda: (a := archiver())["failed_count"] > before["failed_count"] and a,
                within=TIMEOUTS.alert,
                what="pg_stat_archiver.failed_count rising",
                every=1,
            )
        wal_during, ready = int(su(WAL_BYTES)), int(su(READY))
        last = su(SEGMENT)
    with drill.phase("heal: the archive catches up"):
        run("UPDATE dr.ledger SET note = note WHERE id = 1")
        su("SELECT pg_switch_wal()")  # new WAL wakes the archiver at once (else it retries within 60 s)
        wait_for(
            lambda: int(su(READY)) == 0 and archiver()["last_archived_wal"] >= last,
            within=TIMEOUTS.backup,
            what=f"every segment up to {last} archived",
            every=1,
        )
    timeline = int(first[:8], 16)
    present = set(repo.archived_segments(timeline))
    expected = segment_range(first, last, int(su(SEGMENT_BYTES_SQL)))
    missing = [s for s in expected if s not in present]
    drill.report(
        rto_s=drill.phases["heal: the archive catches up"],
        rpo_s=None,
        failed_count=during["failed_count"] - before["failed_count"],
        last_failed_wal=during["last_failed_wal"],
        ready_segments=ready,
        pg_wal_growth_bytes=wal_during - wal_before,
        segments=f"{first}..{last}",
        missing=missing,
    )
    assert ready >= SEGMENTS_DURING_OUTAGE - 1, f"only {ready} segments waiting: archiving did not really stop"
    assert not missing, f"WAL gap in the archive after the outage: {missing}"
    assert repo.check().ok
