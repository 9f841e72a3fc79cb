"""Drill 10, Citus: base backups of the coordinator and both workers, `citus_create_restore_point`, and a
consistent restore of ALL THREE nodes to that point.

With PostgreSQL's own tools (the upstream Citus image has no pgBackRest): WAL archiving into /backup/<node>/wal
of the `citus-backup` volume (compose/citus.yml), `pg_basebackup` inside each node, recovery to the named point
(topology/citus_backup.py). The scenario:

  arm archiving -> base backups -> writes that MUST survive (after the backups, before the point: only the
  archive can bring them back) -> snapshot -> citus_create_restore_point -> writes that must NOT survive
  (users + events on both workers, a reference-table update) -> archive every node's WAL ->
  RESTORE: stop the three nodes, data := base backup + recovery to the point, start, promoted ->
  coordinator answers a multi-shard query -> verify -> back to the seed data, health gate.

Verified after the restore: every node logged `recovery stopping at restore point "<name>"` and is on a new
timeline; fingerprints (count + md5 of every row) of distributed.users, distributed.events and both reference
tables, the co-located join, 32 shards and 16/16 placements, no split co-location, reference reads through
every node: all equal to the snapshot taken at the point; the rows written after the point are absent, those
written before it present.

RTO = from "stop the three nodes" to "the coordinator answers a multi-shard query". RPO = the writes after the
point, which a restore to the point discards by design: their count and the seconds from the point to the
last of them.

The check can fail (run it to see it red): DPG_CITUS_DR_SABOTAGE=later-point restores to a second restore
point taken AFTER the late writes (they survive: fingerprints differ, post-point rows present);
DPG_CITUS_DR_SABOTAGE=skip-worker-2 restores the coordinator and worker-1 only (worker-2 keeps the late rows
and its log has no restore-point line). After a sabotaged run the cluster is inconsistent on purpose:
`python -m topology down citus` (pytest does it when it started the stack).
"""

from __future__ import annotations

import os
import time
import uuid

import allure
import pytest

from chaos.experiments.drill import Drill
from topology import evidence
from topology.citus import CitusCluster, connect
from topology.citus_backup import STOPPED_AT, citus_backups, query, timeline
from topology.health import assert_healthy
from topology.names import CITUS_NODES
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

pytestmark = [
    pytest.mark.faults("Disaster@stack:citus"),
    pytest.mark.dr,
    pytest.mark.destructive,
    pytest.mark.citus,
    allure.parent_suite("dr"),
    allure.suite("citus"),
]

SABOTAGE = os.environ.get("DPG_CITUS_DR_SABOTAGE", "")
SABOTAGES = ("", "later-point", "skip-worker-2")
#: id ranges of the drill's own rows (the seed uses users 1..10000, countries 1..50)
BEFORE_IDS, AFTER_IDS = 1_000_000, 2_000_000
BEFORE_ROWS, AFTER_WRITES = 10, 20
EVENTS_PER_USER = 2
MULTI_SHARD = "SELECT count(*) FROM distributed.users"
COORDINATOR = CITUS_NODES[0]


def _insert_user(uid: int) -> float:
    """One user with its co-located events in one transaction; the coordinator's commit time (epoch)."""
    sql = (
        f"BEGIN; INSERT INTO distributed.users VALUES ({uid}, 1 + {uid} % 50, 'dr{uid}@dpg.test', now()); "
        f"INSERT INTO distributed.events SELECT {uid}, {uid} * 10 + k, 'dr', now() "
        f"FROM generate_series(1, {EVENTS_PER_USER}) k; COMMIT"
    )
    with connect(COORDINATOR, statement_timeout_ms=30_000) as conn:
        conn.execute(sql)
        return float(conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0])


def _drill_rows(low: int, high: int) -> dict[str, int]:
    return {
        "users": int(
            query(COORDINATOR, "SELECT count(*) FROM distributed.users WHERE id >= %s AND id < %s", (low, high))
        ),
        "events": int(
            query(
                COORDINATOR, "SELECT count(*) FROM distributed.events WHERE user_id >= %s AND user_id < %s", (low, high)
            )
        ),
    }


def _differences(before: dict, after: dict) -> dict:
    """What differs, short enough to read in a failure message (a long list: its first differing row only)."""
    out = {}
    for key in before:
        was, now = before[key], after.get(key)
        if was == now:
            continue
        if isinstance(was, list) and isinstance(now, list):
            first = next((i for i, (a, b) in enumerate(zip(was, now, strict=False)) if a != b), min(len(was), len(now)))
            out[key] = {
                "rows at the point": len(was),
                "rows restored": len(now),
                "first difference at": first,
                "at the point": was[first] if first < len(was) else None,
                "restored": now[first] if first < len(now) else None,
            }
        elif isinstance(was, dict) and isinstance(now, dict):
            out[key] = {
                k: {"at the point": was.get(k), "restored": now.get(k)}
                for k in sorted(set(was) | set(now), key=str)
                if was.get(k) != now.get(k)
            }
        else:
            out[key] = {"at the point": was, "restored": now}
    return out


@allure.title("Citus: coordinator + workers restored consistently to citus_create_restore_point")
def test_citus_consistent_restore_point(citus_stack):
    assert SABOTAGE in SABOTAGES, f"DPG_CITUS_DR_SABOTAGE={SABOTAGE!r}: expected one of {SABOTAGES[1:]} or unset"
    citus = CitusCluster()
    drill = Drill("citus restore point" + (f" (sabotage: {SABOTAGE})" if SABOTAGE else ""))
    point = f"dpg-dr-{uuid.uuid4().hex[:8]}"
    restored_nodes = CITUS_NODES if SABOTAGE != "skip-worker-2" else CITUS_NODES[:2]
    with allure.step("steady state"):
        assert_healthy(citus_stack, ["citus"])
        seed = citus.fingerprints()
    with citus_backups(citus_stack) as backups:
        with drill.phase("base backups (pg_basebackup inside each node)"):
            base = [backups.base_backup(node) for node in CITUS_NODES]
        with drill.phase("writes before the restore point (must survive: only the archive holds them)"):
            for i in range(BEFORE_ROWS):
                _insert_user(BEFORE_IDS + i)
            query(COORDINATOR, "UPDATE distributed.regions SET name = name || '-before' WHERE id = 1")
        with allure.step("snapshot at the point"):
            at_point = citus.snapshot()
            timelines = {n: timeline(n) for n in CITUS_NODES}
        with drill.phase("citus_create_restore_point"):
            point_lsn = backups.restore_point(point)
            point_at = float(query(COORDINATOR, "SELECT extract(epoch FROM clock_timestamp())"))
        with drill.phase("writes after the restore point (must NOT survive)"):
            after_at = []
            for i in range(AFTER_WRITES):
                after_at.append(_insert_user(AFTER_IDS + i))
                time.sleep(0.05)
            query(COORDINATOR, "UPDATE distributed.countries SET name = name || '-late' WHERE id = 7")
            after_at.append(float(query(COORDINATOR, "SELECT extract(epoch FROM clock_timestamp())")))
            late_written = _drill_rows(AFTER_IDS, AFTER_IDS + AFTER_WRITES)
            target = point
            if SABOTAGE == "later-point":
                target = f"{point}-late"
                backups.restore_point(target)
        with drill.phase("archive the WAL of every node (pg_switch_wal)"):
            archived = backups.archive_now()
        restore_started = time.time()
        with drill.phase("restore: stop the nodes"):
            stop_exit_codes = backups.stop(restored_nodes)
        with drill.phase("restore: data directory := base backup + recovery to the point (one-off container)"):
            backups.replace_data(target, restored_nodes)
        with drill.phase("restore: start, recover to the point, promote"):
            backups.start(restored_nodes)
            promoted = backups.wait_promoted(restored_nodes)
        with drill.phase("coordinator answers a multi-shard query"):
            answered = wait_for(
                lambda: query(COORDINATOR, MULTI_SHARD) is not None,
                within=TIMEOUTS.citus_recover,
                what="the coordinator answers a multi-shard count after the restore",
            )
        with allure.step("verify the restored cluster"):
            restored = citus.snapshot()
            late_restored = _drill_rows(AFTER_IDS, AFTER_IDS + AFTER_WRITES)
            early_restored = _drill_rows(BEFORE_IDS, BEFORE_IDS + BEFORE_ROWS)
            stopped_at = {n: STOPPED_AT.format(target) in backups.log_since(n, restore_started) for n in CITUS_NODES}
            new_timelines = {n: timeline(n) for n in CITUS_NODES}
        backups.tidy(restored_nodes)
    leftovers = backups.leftovers()

    rpo_s = round(max(after_at) - point_at, 2)
    drill.report(
        rto_s=drill.span("restore: stop the nodes", "coordinator answers a multi-shard query"),
        rpo_s=rpo_s,
        rpo_writes=AFTER_WRITES + 1,
        target=f"restore point {target}",
        point_lsn_coordinator=point_lsn,
        sabotage=SABOTAGE or None,
        base_backups=[b.__dict__ for b in base],
        archived=[a.__dict__ for a in archived],
        promoted_after_s=promoted,
        stop_exit_codes=stop_exit_codes,
        timelines_before=timelines,
        timelines_after=new_timelines,
        late_rows_written=late_written,
        late_rows_restored=late_restored,
        early_rows_restored=early_restored,
        answered=bool(answered),
    )
    diff = _differences(at_point, restored)
    evidence.attach_json(
        "restored vs restore point", {"differences": diff, "stopped at the point": stopped_at, "leftovers": leftovers}
    )
    problems = []
    if late_written != {"users": AFTER_WRITES, "events": AFTER_WRITES * EVENTS_PER_USER}:
        problems.append(f"the late writes were not all written before the restore: {late_written}")
    if diff:
        problems.append(f"the restored cluster differs from the restore point: {diff}")
    if late_restored != {"users": 0, "events": 0}:
        problems.append(f"rows written after the restore point survived: {late_restored}")
    if early_restored != {"users": BEFORE_ROWS, "events": BEFORE_ROWS * EVENTS_PER_USER}:
        problems.append(f"rows written before the restore point (after the base backups) are missing: {early_restored}")
    if not all(stopped_at.values()):
        problems.append(f"not every node's recovery stopped at {target!r}: {stopped_at}")
    if not all(new_timelines[n] > timelines[n] for n in CITUS_NODES):
        problems.append(f"not every node was restored and promoted (timelines {timelines} -> {new_timelines})")
    if restored["shards"] != 32 or sorted(restored["placements"].values()) != [16, 16]:
        problems.append(f"shards {restored['shards']}, placements {restored['placements']}: expected 32, 16/16")
    if leftovers:
        problems.append(f"the drill left things behind: {leftovers}")

    with allure.step("back to the seed data (the drill's rows removed), health gate"):
        query(COORDINATOR, f"DELETE FROM distributed.events WHERE user_id >= {BEFORE_IDS}")
        query(COORDINATOR, f"DELETE FROM distributed.users WHERE id >= {BEFORE_IDS}")
        query(COORDINATOR, "UPDATE distributed.regions SET name = replace(name, '-before', '') WHERE id = 1")
        query(COORDINATOR, "UPDATE distributed.countries SET name = replace(name, '-late', '') WHERE id = 7")
        back_to_seed = citus.fingerprints() == seed
    assert problems == [], "\n".join(problems)
    assert back_to_seed, "the cluster did not return to the seed data after the drill"
    assert_healthy(citus_stack, ["citus"], within=TIMEOUTS.citus_recover)
