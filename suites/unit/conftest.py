"""Unit tests run faults against stand-ins: their journal goes to a temporary file, never the run's own
(`python -m chaos heal` would otherwise try to undo a stand-in's fault left unhealed on purpose)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _scratch_fault_journal(tmp_path, monkeypatch):
    monkeypatch.setenv("DPG_FAULT_JOURNAL", str(tmp_path / "fault-journal.jsonl"))
