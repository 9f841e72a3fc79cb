"""Drill 1, baseline: the stanza checks out, full/differential/incremental backups are taken, `verify` is clean
and retention expires the oldest full backup."""

from __future__ import annotations

import os

import allure
import pytest

from chaos.experiments.drill import live_query

from .conftest import primary

pytestmark = [
    pytest.mark.faults("Disaster@stack:patroni"),
    pytest.mark.dr,
    pytest.mark.destructive,
    allure.parent_suite("dr"),
    allure.suite("baseline"),
]


@allure.title("stanza check, full + diff + incr backups, verify clean, retention applied")
def test_baseline_backups_verify(repo, dr_data, drill):
    write = live_query(primary())
    with drill.phase("stanza check"):
        check = repo.check()
    with drill.phase("full backup"):
        full = repo.backup("full")
    write("UPDATE dr.ledger SET note = note || '+d' WHERE id % 50 = 0")
    with drill.phase("differential backup"):
        repo.backup("diff")
    write("UPDATE dr.ledger SET note = note || '+i' WHERE id % 70 = 0")
    with drill.phase("incremental backup"):
        repo.backup("incr")
    with drill.phase("verify"):
        verdict = repo.verify()
    backups = repo.backups()
    allure.attach(repo.info_text(), name="pgbackrest info", attachment_type=allure.attachment_type.TEXT)
    allure.attach(verdict.output, name="pgbackrest verify", attachment_type=allure.attachment_type.TEXT)
    with drill.phase("retention: a third full backup expires the oldest"):
        repo.backup("full")
        repo.backup("full")
        fulls = [b for b in repo.backups() if b.type == "full"]
    drill.report(
        rto_s=None,
        rpo_s=None,
        full_backup_s=round(full.seconds, 2),
        check_s=round(check.seconds, 2),
        db_bytes=backups[-1].size,
        repo_bytes_full=next(b.repo_size for b in backups if b.type == "full"),
        backups=[f"{b.label} {b.type}" for b in backups],
    )
    assert verdict.ok, "verify found problems: " + "; ".join(verdict.errors)
    assert [b.type for b in backups][-3:] == ["full", "diff", "incr"], [b.label for b in backups]
    assert repo.status()[0] == 0, repo.status()
    keep = int(os.environ.get("DPG_BACKUP_RETENTION_FULL", "2"))
    assert len(fulls) == keep, f"retention keeps {keep} full backups (repo1-retention-full), found {len(fulls)}"
