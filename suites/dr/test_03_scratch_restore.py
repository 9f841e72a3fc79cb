"""Drill 4, scratch restore: the newest backup plus the archive, restored into a throwaway container with
archiving off, is structurally sound (pg_amcheck on heap and B-tree indexes, pg_checksums on every page)
and holds exactly the source's tables."""

from __future__ import annotations

import allure
import pytest

from chaos.experiments.drill import fingerprints, live_query

from .conftest import primary

pytestmark = [
    pytest.mark.faults("Disaster@stack:patroni"),
    pytest.mark.dr,
    pytest.mark.destructive,
    allure.parent_suite("dr"),
    allure.suite("scratch restore"),
]


@allure.title("scratch restore: amcheck + checksums clean, fingerprints equal to the source")
def test_scratch_restore_is_sound_and_identical(repo, has_backup, dr_data, drill):
    tables = [*dr_data, "probe.writes"]
    with drill.phase("fingerprint the source and archive up to now"):
        source = fingerprints(live_query(primary()), tables)
        repo.check()
    with repo.scratch() as scratch:
        with drill.phase("restore (newest backup + archive)"):
            scratch.restore()
        with drill.phase("recovery and promotion"):
            scratch.start()
        with drill.phase("pg_amcheck (heap + B-tree, heapallindexed)"):
            amcheck = scratch.amcheck()
        restored = fingerprints(scratch.sql, tables)
        archive_mode = scratch.sql("SHOW archive_mode", db="postgres")
        scratch.stop()
        with drill.phase("pg_checksums --check"):
            checksums = scratch.checksums()
    evidence = {"amcheck": amcheck.output[-2000:], "checksums": checksums.output[-1000:]}
    allure.attach(
        evidence["amcheck"] + "\n---\n" + evidence["checksums"],
        name="amcheck / checksums",
        attachment_type=allure.attachment_type.TEXT,
    )
    drill.report(
        rto_s=drill.span("restore (newest backup + archive)", "recovery and promotion"),
        rpo_s=None,
        fingerprints=restored,
    )
    assert archive_mode == "off", "the scratch copy must never archive into the repository"
    assert amcheck.code == 0, f"pg_amcheck found corruption: {amcheck.output[-500:]}"
    assert checksums.code == 0 and "Bad checksums:  0" in checksums.output, checksums.output[-500:]
    assert restored == source, f"restored tables differ from the source: {restored} != {source}"
