"""Drill 10, Citus: backups of the coordinator and both workers with citus_create_restore_point and a consistent
restore of all three to that point. Runs only where the Citus image exists AND carries pgBackRest; otherwise it
is skipped with the reason (the topology's own reason when the image is absent)."""
from __future__ import annotations

import allure
import pytest

from topology.backup import has_pgbackrest
from topology.names import CITUS_NODES

pytestmark = [pytest.mark.dr, pytest.mark.destructive, pytest.mark.citus, allure.parent_suite("dr"),
              allure.suite("citus")]


@allure.title("Citus: coordinator + workers restored consistently to citus_create_restore_point")
def test_citus_consistent_restore_point(citus_stack):
    missing = [n for n in CITUS_NODES if not has_pgbackrest(citus_stack, n)]
    if missing:
        pytest.skip(f"the Citus image in use carries no pgBackRest ({', '.join(missing)}): no backup to drill; "
                    "build a Citus image with pgbackrest to run this drill")
    pytest.skip("Citus image with pgBackRest found, but the Citus restore drill is not implemented yet "
                "(see README, DR drills: not done)")
