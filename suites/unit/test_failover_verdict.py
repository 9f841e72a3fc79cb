"""suites/failover's verdict: which exception a finding raises decides what an `xfail(raises=...)` may absorb.

A known split brain (the async freeze) is marked `xfail(raises=SplitBrainFound)`: loss beyond the bound, a
setup error or an unhealthy cluster must still fail that test, so each has to surface as something else."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chaos.checkers.writes import Anomaly, SetVerdict, SplitBrainVerdict
from suites.failover.conftest import SLOBreach, SplitBrainFound, assert_failover_ok

pytestmark = pytest.mark.unit


def _result(*, lost=(), anomalies=(), breaches=()):
    empty = frozenset()
    sv = SetVerdict(
        valid=not lost,
        attempted=frozenset(range(10)),
        acknowledged=frozenset(range(10)),
        lost=frozenset(lost),
        unexpected=empty,
        recovered=empty,
        duplicates=empty,
        indeterminate_missing=empty,
        failed_but_present=empty,
    )
    sb = SplitBrainVerdict(valid=not anomalies, anomalies=tuple(anomalies), servers_seen=(), timelines_seen=())
    marks = {"stop_requested": 400, "accepting_writes": 1300, "key_released": 800}
    return SimpleNamespace(fault="freeze", set_verdict=sv, split_brain=sb, breaches=lambda: list(breaches),
                           old_leader="patroni-1", new_leader="patroni-2", marks_ms=marks)  # fmt: skip


LATE_ACK = Anomaly(kind="stale-timeline", detail="deposed leader acknowledged 7 on timeline 3", ops_values=(7,))


def test_split_brain_raises_its_own_type_and_still_names_every_problem():
    with pytest.raises(SplitBrainFound, match=r"data loss.*split brain"):
        assert_failover_ok(_result(lost=[3], anomalies=[LATE_ACK]))


def test_loss_without_split_brain_is_not_a_split_brain():
    with pytest.raises(AssertionError, match="data loss") as err:
        assert_failover_ok(_result(lost=[3]))
    assert not isinstance(err.value, (SplitBrainFound, SLOBreach))


def test_loss_within_the_bound_and_a_slow_failover_is_an_slo_breach_only():
    with pytest.raises(SLOBreach):
        assert_failover_ok(_result(lost=[3], breaches=["haproxy: write gap 25000 ms > SLO 23500 ms"]), allow_loss=1)


def test_a_clean_result_passes():
    assert_failover_ok(_result())


def test_a_breach_names_the_nodes_phase_marks_in_time_order():
    """CI keeps the log, not always the Allure results: the message itself says where the gap went."""
    with pytest.raises(SLOBreach) as err:
        assert_failover_ok(_result(breaches=["haproxy: write gap 6000 ms > SLO 3000 ms"]))
    assert (
        "patroni-1 -> patroni-2, ms after the fault: stop_requested 400, key_released 800, accepting_writes 1300"
        in (str(err.value))
    )
