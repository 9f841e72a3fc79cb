"""Drill 5, corrupted repository: bytes flipped in a backup file make `verify` and a restore fail loudly.
Never a silent bad restore: the restore must stop with an error and no PostgreSQL may start on its output."""

from __future__ import annotations

import allure
import pytest

pytestmark = [
    pytest.mark.faults("Disaster@stack:patroni"),
    pytest.mark.dr,
    pytest.mark.destructive,
    allure.parent_suite("dr"),
    allure.suite("corrupted repository"),
]


@allure.title("flipped bytes in a backup file: verify and restore fail with a clear error")
def test_corrupted_backup_is_detected(repo, has_backup, drill):
    with drill.phase("fresh full backup"):
        repo.backup("full")
    label = repo.backups()[-1].label
    path, size = repo.backup_files(label)[0]
    with repo.corrupted(path, offset=min(4096, size // 2)):
        with drill.phase("verify the corrupted repository"):
            verdict = repo.verify()
        with repo.scratch() as scratch:
            with drill.phase("restore attempt"):
                attempt = scratch.restore(check=False)
            started = scratch.sh("test -f /data/pgdata/global/pg_control", check=False)
    allure.attach(verdict.output, name="verify (corrupted)", attachment_type=allure.attachment_type.TEXT)
    allure.attach(attempt.output, name="restore (corrupted)", attachment_type=allure.attachment_type.TEXT)
    with drill.phase("verify after the bytes are put back"):
        healed = repo.verify()
    drill.report(
        rto_s=None,
        rpo_s=None,
        corrupted=path.rsplit("/pg_data/", 1)[-1],
        verify_ok=verdict.ok,
        restore_exit=attempt.code,
        restore_error=next((line.strip() for line in attempt.output.splitlines() if "ERROR" in line), None),
    )
    assert not verdict.ok, "verify did not notice a corrupted backup file"
    assert "invalid checksum" in verdict.output, verdict.output[-800:]
    assert attempt.code != 0, "restore from a corrupted backup succeeded: a silent bad restore"
    assert "ERROR" in attempt.output, attempt.output[-800:]
    assert started.code != 0, "pg_control was written although the restore failed (it is restored last)"
    assert healed.ok, "the repository is still broken after the bytes were put back: " + "; ".join(healed.errors)
