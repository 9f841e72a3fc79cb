"""Drill 3, point-in-time recovery after a mistake: the lost table is restored from the repository into a
scratch copy (to a named restore point, or to the time just before a mass DELETE) and copied back.

How later, unrelated writes are handled (docs/disaster-recovery.md): the live cluster is NOT rolled back; only
the damaged table is brought back from the copy, so writes made after the mistake elsewhere are kept. A wrong
restore target is caught: the restored table's fingerprint differs from the one taken before the mistake.
"""

from __future__ import annotations

import uuid

import allure
import pytest

from chaos.experiments.drill import HEARTBEAT_READ, Heartbeat, fingerprints, live_query, rpo_seconds

from .conftest import primary, superuser

pytestmark = [
    pytest.mark.faults("Disaster@stack:patroni"),
    pytest.mark.dr,
    pytest.mark.destructive,
    allure.parent_suite("dr"),
    allure.suite("point-in-time recovery"),
]

ORDERS = "dr.orders"
SETUP = [
    "CREATE SCHEMA IF NOT EXISTS dr",
    f"DROP TABLE IF EXISTS {ORDERS}, dr.orders_recovered",
    f"CREATE TABLE {ORDERS} (id int PRIMARY KEY, customer int NOT NULL, total numeric(10,2) NOT NULL, note text)",
    f"INSERT INTO {ORDERS} SELECT i, i % 211, (i * 7 % 1000) / 10.0, 'order-' || i FROM generate_series(1, 5000) i",
    "CREATE TABLE IF NOT EXISTS dr.after_mistake (marker text PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())",
]
NOW_UTC = "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
EPOCH = "SELECT extract(epoch FROM clock_timestamp())"


def table_problems(expected: dict[str, str], found: dict[str, str]) -> list[str]:
    """What differs between the fingerprint taken before the mistake and the restored one."""
    return [f"{t}: expected {expected[t]}, restored {found.get(t)}" for t in expected if found.get(t) != expected[t]]


def prepare() -> tuple:
    run = live_query(primary())
    for sql in SETUP:
        run(sql)
    return run, fingerprints(run, [ORDERS])


@allure.title("DROP TABLE: restore to a named restore point in a scratch copy, copy the table back")
def test_pitr_to_named_restore_point_after_drop_table(repo, has_backup, drill):
    run, before = prepare()
    marker = uuid.uuid4().hex[:8]
    point = f"dr-before-drop-{marker}"
    with Heartbeat(primary()) as hb:
        assert hb.wait_beats(3), "heartbeat never acknowledged"
        live_query(superuser())(f"SELECT pg_create_restore_point('{point}')")
        hb.wait_beats(2)
        with drill.phase("the mistake: DROP TABLE"):
            mistake_at = float(run(EPOCH))
            run(f"DROP TABLE {ORDERS}")
        run(f"INSERT INTO dr.after_mistake (marker) VALUES ('{marker}')")  # an unrelated later write
        with drill.phase("archive the WAL holding the mistake"):
            repo.check()
    with repo.scratch(target=("name", point)) as scratch:
        with drill.phase("restore to the restore point (scratch)"):
            scratch.restore()
            scratch.start()
        restored = fingerprints(scratch.sql, [ORDERS])
        restored_beat = float(scratch.sql(HEARTBEAT_READ) or 0) or None
        later_in_copy = scratch.sql(f"SELECT count(*) FROM dr.after_mistake WHERE marker = '{marker}'")
        with drill.phase("copy the table back into the live cluster"):
            scratch.dump_into(ORDERS)
    live = fingerprints(run, [ORDERS])
    later_kept = run(f"SELECT count(*) FROM dr.after_mistake WHERE marker = '{marker}'")
    drill.report(
        rto_s=drill.span("restore to the restore point (scratch)", "copy the table back into the live cluster"),
        rpo_s=rpo_seconds(mistake_at, restored_beat),
        target=f"name {point}",
        rows_restored=live[ORDERS],
        later_write_in_copy=int(later_in_copy),
        later_write_kept=int(later_kept),
    )
    assert table_problems(before, restored) == [], "restored copy differs from the table before the mistake"
    assert table_problems(before, live) == [], "the table copied back differs from the one before the mistake"
    assert int(later_in_copy) == 0, "the copy stops at the restore point: a later write must not be in it"
    assert int(later_kept) == 1, "the unrelated write made after the mistake was lost from the live cluster"


@allure.title("mass DELETE: restore to the time just before it, re-insert the deleted rows")
def test_pitr_to_time_before_mass_delete(repo, has_backup, drill):
    run, before = prepare()
    with Heartbeat(primary()) as hb:
        assert hb.wait_beats(3), "heartbeat never acknowledged"
        target = run(NOW_UTC)
        hb.wait_beats(1)
        with drill.phase("the mistake: DELETE two thirds of the rows"):
            mistake_at = float(run(EPOCH))
            run(f"DELETE FROM {ORDERS} WHERE id % 3 <> 0")
        with drill.phase("archive the WAL holding the mistake"):
            repo.check()
    with repo.scratch(target=("time", target)) as scratch:
        with drill.phase("restore to the time before the DELETE (scratch)"):
            scratch.restore()
            scratch.start()
        restored = fingerprints(scratch.sql, [ORDERS])
        restored_beat = float(scratch.sql(HEARTBEAT_READ) or 0) or None
        with drill.phase("re-insert the deleted rows into the live cluster"):
            scratch.sql(f"CREATE TABLE dr.orders_recovered AS SELECT * FROM {ORDERS}")
            scratch.dump_into("dr.orders_recovered")
            run(
                f"INSERT INTO {ORDERS} SELECT r.* FROM dr.orders_recovered r "
                f"WHERE NOT EXISTS (SELECT 1 FROM {ORDERS} o WHERE o.id = r.id)"
            )
            run("DROP TABLE dr.orders_recovered")
    live = fingerprints(run, [ORDERS])
    drill.report(
        rto_s=drill.span(
            "restore to the time before the DELETE (scratch)", "re-insert the deleted rows into the live cluster"
        ),
        rpo_s=rpo_seconds(mistake_at, restored_beat),
        target=f"time {target}",
        rows_restored=live[ORDERS],
    )
    assert table_problems(before, restored) == [], "restored copy differs from the table before the DELETE"
    assert table_problems(before, live) == [], "the repaired table differs from the one before the DELETE"


@allure.title("a wrong restore target (after the DELETE) is caught by the fingerprint check")
def test_wrong_restore_target_is_caught(repo, has_backup, drill):
    run, before = prepare()
    with Heartbeat(primary()) as hb:  # commits after the target: recovery needs one to stop there
        run(f"DELETE FROM {ORDERS} WHERE id % 3 <> 0")
        wrong_target = run(NOW_UTC)  # just AFTER the mistake: the restored table still lacks the rows
        assert hb.wait_beats(2), "heartbeat never acknowledged"
        repo.check()
    with repo.scratch(target=("time", wrong_target)) as scratch:
        with drill.phase("restore to a target after the DELETE (scratch)"):
            scratch.restore()
            scratch.start()
        restored = fingerprints(scratch.sql, [ORDERS])
    problems = table_problems(before, restored)
    drill.report(rto_s=None, rpo_s=None, target=f"time {wrong_target} (wrong on purpose)", problems=problems)
    assert problems, "a restore to the wrong target went unnoticed: the drill's check cannot fail"
    run(f"DROP TABLE {ORDERS}")
