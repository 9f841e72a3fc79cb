"""Steady state of the Citus cluster, as the fault scenarios rely on it: 32 shards of distributed.users placed
16/16 over the two workers (balance reported, and Citus's own rebalancer plans no move), events co-located
with users, reference tables readable through every node, the connection bound configured."""

from __future__ import annotations

import allure
import pytest

from topology import evidence
from topology.citus import REFERENCE, WORKERS
from topology.seed import CITUS_SHARDS

pytestmark = pytest.mark.citus


def test_shards_balanced_colocated_and_reference_tables_everywhere(citus, bounds):
    with allure.step("shards and balance"):
        placed = {t: citus.placements(t) for t in ("distributed.users", "distributed.events")}
        moves = citus.rebalance_moves()
        evidence.attach_json(
            "placements",
            {
                "placements": placed,
                "rebalancer_planned_moves": moves,
                "citus_version": citus.version(),
                "node_connection_timeout_ms": bounds.node_connection_timeout_ms,
            },
        )
        evidence.record_measurement(
            "citus_balance", placements=placed["distributed.users"], moves=moves, version=citus.version()
        )
        assert citus.shard_count("distributed.users") == CITUS_SHARDS
        for table, by_worker in placed.items():
            assert by_worker == {w: CITUS_SHARDS // len(WORKERS) for w in WORKERS}, f"{table}: {by_worker}"
        assert moves == 0, f"the rebalancer would move {moves} shards"
    with allure.step("co-location: no users/events shard pair split across nodes"):
        assert citus.colocation_splits() == 0
    with allure.step("reference tables through every node"):
        reads = citus.reference_reads()
        evidence.attach_json("reference reads", reads)
        coordinator_view = reads["citus-coordinator"]
        assert all(coordinator_view[t] > 0 for t in REFERENCE), coordinator_view
        assert all(view == coordinator_view for view in reads.values()), reads
    with allure.step("the connection bound is the configured one"):
        # compose/citus.yml sets it; 30 s is Citus's default, i.e. the setting did not arrive
        assert bounds.node_connection_timeout_ms != 30_000, "citus.node_connection_timeout is Citus's default"


@pytest.mark.destructive
@pytest.mark.faults()  # no fault: it changes one seeded row through SQL and restores it
def test_checks_can_fail_one_changed_row_changes_the_snapshot(citus):
    """The after-heal comparison would see a lost or altered row: change one user (and restore it)."""
    from topology.citus import connect

    from .scenario import snapshot_diff

    before = citus.snapshot()
    with connect() as conn:
        conn.execute("UPDATE distributed.users SET email = email || '.changed' WHERE id = 1")
        try:
            changed = citus.snapshot()
        finally:
            conn.execute("UPDATE distributed.users SET email = left(email, -length('.changed')) WHERE id = 1")
    diff = snapshot_diff(before, changed)
    assert (
        "fingerprints" in diff
        and diff["fingerprints"]["before"]["distributed.users"] != diff["fingerprints"]["after"]["distributed.users"]
    ), diff
    assert snapshot_diff(before, citus.snapshot()) == {}, "restoring the row did not restore the snapshot"
