"""The topology guard's repair keeps the evidence of a broken stack before it recreates it (no Docker: fakes)."""

from __future__ import annotations

import pytest

from topology import pytest_guard

pytestmark = pytest.mark.unit


class FakeContainer:
    def __init__(self, name: str, log: str):
        self.name, self._log = name, log

    def logs(self, tail: int) -> bytes:
        return "\n".join(self._log.splitlines()[-tail:]).encode()


def test_repair_keeps_logs_then_recreates_in_start_order(monkeypatch, tmp_path):
    calls = []
    containers = {
        "patroni": [FakeContainer("dpg-patroni-1", "line 1\nFATAL: could not rewind\n")],
        "pgbouncer": [FakeContainer("dpg-pgbouncer", "ok\n")],
    }
    monkeypatch.setattr(pytest_guard, "managed_containers", lambda client, stack: containers[stack])
    monkeypatch.setattr(pytest_guard.lifecycle, "down", lambda names: calls.append(("down", names)))
    monkeypatch.setattr(pytest_guard.lifecycle, "up", lambda names, build: calls.append(("up", names)))
    from topology import evidence

    monkeypatch.setattr(evidence, "OUT_DIR", tmp_path)
    monkeypatch.setattr(pytest_guard, "STATE", pytest_guard._GuardState())

    done = pytest_guard.repair(None, {"pgbouncer": "refused", "patroni": "no leader"}, after="t::x")

    assert calls == [("down", ["patroni"]), ("up", ["patroni"]), ("down", ["pgbouncer"]), ("up", ["pgbouncer"])]
    assert done[0].startswith("patroni recreated") and "after t::x" in done[0] and "no leader" in done[0]
    kept = sorted((tmp_path / "repairs").iterdir())
    assert len(kept) == 2 and "FATAL: could not rewind" in kept[0].read_text()
    assert any("FATAL: could not rewind" in line for line in pytest_guard.STATE.tails)


def test_bad_budget_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("DPG_SESSION_BUDGET_S", "soon")
    with pytest.raises(pytest.UsageError, match="DPG_SESSION_BUDGET_S='soon' is not a number"):
        pytest_guard._int_env("DPG_SESSION_BUDGET_S", 0)
