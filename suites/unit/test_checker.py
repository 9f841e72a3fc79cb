"""Checkers on hand-made histories: each anomaly must be detected, clean runs must pass."""

from __future__ import annotations

import json

import pytest

from chaos.checkers.writes import (
    GapReport,
    LeaderChange,
    SetVerdict,
    SplitBrainVerdict,
    check_set,
    check_split_brain,
    compose,
    leader_changes,
    write_gap,
)
from chaos.history import History, Op

pytestmark = pytest.mark.unit

EPOCH = 1_700_000_000.0
A, B = "172.25.0.3:5432", "172.25.0.4:5432"


def _w(value: int, t: float, outcome: str = "ok", probe: str = "haproxy", dur: float = 0.005, **kw: object) -> Op:
    """A write invoked at monotonic `t` (wall = EPOCH + t)."""
    return Op(probe=probe, kind="write", value=value, start=t, end=t + dur, wall=EPOCH + t, outcome=outcome, **kw)


def _ack(value: int, server: str, ts: float, timeline: int | None = None, node: str | None = None) -> Op:
    """An ok write acknowledged by `server` with server commit time EPOCH + ts."""
    return _w(value, ts, server=server, node=node, timeline=timeline, commit_ts=EPOCH + ts)


def _kinds(v: SplitBrainVerdict) -> set[str]:
    return {a.kind for a in v.anomalies}


def _series_with_hole() -> History:
    """Writes every 20 ms for 3 s; those invoked in (1.0, 2.52) are refused."""
    ops = []
    for i in range(151):
        t = round(i * 0.02, 6)
        failing = 1.0 < t < 2.52
        ops.append(_w(i, t, "fail" if failing else "ok", error="OperationalError: refused" if failing else None))
    return History(ops)


# --------------------------------------------------------------------------- write_gap


def test_write_gap_measures_the_hole() -> None:
    r = write_gap(_series_with_hole(), "haproxy")
    assert r.valid is True
    assert r.longest_gap_ms == pytest.approx(1520, abs=1)
    assert (r.gap_start, r.gap_end) == (pytest.approx(1.005), pytest.approx(2.525))
    assert r.first_error == pytest.approx(1.02)
    assert r.first_ok_after == pytest.approx(2.525)
    assert r.unavailable_ms == pytest.approx(1505, abs=1)
    assert (r.ok, r.fail, r.info) == (151 - 75, 75, 0)
    assert r.tail_errors == 0
    json.dumps(r.to_dict())


def test_write_gap_after_keeps_the_last_ok_write_as_anchor() -> None:
    h = _series_with_hole()
    injected = write_gap(h, "haproxy", after=1.01)  # fault injected just after the last ok write
    assert injected.longest_gap_ms == pytest.approx(1520, abs=1)
    assert injected.ok == sum(1 for o in h.ops(outcome="ok") if o.end > 1.01)
    healed = write_gap(h, "haproxy", after=2.6)
    assert healed.longest_gap_ms == pytest.approx(20, abs=1)
    assert healed.first_error is None and healed.unavailable_ms == 0 and healed.fail == 0


def test_write_gap_slo() -> None:
    h = _series_with_hole()
    assert write_gap(h, "haproxy", slo_ms=1000).valid is False
    assert write_gap(h, "haproxy", slo_ms=2000).valid is True
    assert compose(write_gap(h, "haproxy", slo_ms=1000)) is False


def test_write_gap_slow_write_without_errors() -> None:
    # Gaps are measured between completions: the slow write makes (1 -> 2) the longest gap even
    # though (3 -> 4) has the longer pause between invocations.
    h = History([_w(1, 0.0), _w(2, 0.02, dur=0.9), _w(3, 0.93), _w(4, 1.5)])
    r = write_gap(h, "haproxy")
    assert r.longest_gap_ms == pytest.approx(915, abs=1)
    assert (r.gap_start, r.gap_end) == (pytest.approx(0.005), pytest.approx(0.92))
    assert r.first_error is None and r.first_ok_after is None and r.unavailable_ms == 0


def test_write_gap_counts_info_and_tail_errors() -> None:
    h = History([_w(1, 0.0), _w(2, 0.02, "info", dur=1.0), _w(3, 1.1), _w(4, 1.2, "fail"), _w(5, 1.3, "fail")])
    r = write_gap(h, "haproxy")
    assert (r.ok, r.fail, r.info) == (2, 2, 1)
    assert r.first_error == pytest.approx(0.02)
    assert r.unavailable_ms == pytest.approx(1085, abs=1)
    assert r.tail_errors == 2 and "not recovered" in r.note


def test_write_gap_names_the_attempt_the_client_waited_on() -> None:
    """Fast refusals, then one connect that hangs 2 s until libpq's timeout: the gap's evidence names that
    attempt, and counts the refusals by message."""
    refused = 'OperationalError: connection failed: connection to server at "127.0.0.1", port 5500 failed: refused'
    hung = "OperationalError: connection timeout expired"
    h = History(
        [_w(1, 0.0), *(_w(2 + i, 0.1 + 0.05 * i, "fail", error=refused) for i in range(4)),
         _w(6, 0.35, "fail", dur=2.0, error=hung), _w(7, 2.4), _w(8, 2.42)]
    )  # fmt: skip
    r = write_gap(h, "haproxy")
    assert r.longest_gap_ms == pytest.approx(2400, abs=1)
    assert r.slowest_attempt_ms == pytest.approx(2000, abs=1)
    assert r.slowest_attempt == f"fail: {hung}"
    assert r.errors == {"fail: OperationalError: connect: refused": 4, f"fail: {hung}": 1}
    assert r.attempts() == {"slowest_ms": r.slowest_attempt_ms, "slowest": r.slowest_attempt, "errors": r.errors}
    # a gap without errors: the write that closed it is the slowest attempt
    slow = write_gap(History([_w(1, 0.0), _w(2, 0.02, dur=0.9), _w(3, 0.93)]), "haproxy")
    assert slow.slowest_attempt == "ok" and slow.slowest_attempt_ms == pytest.approx(900, abs=1)
    assert slow.errors == {}


@pytest.mark.parametrize("ops", [[], [_w(1, 0.0)], [_w(1, 0.0, "fail"), _w(2, 0.1, "info")]])
def test_write_gap_not_measurable(ops: list[Op]) -> None:
    r = write_gap(History(ops), "haproxy")
    assert isinstance(r, GapReport)
    assert r.longest_gap_ms is None and r.valid is False and "not measurable" in r.note


def test_write_gap_only_looks_at_its_probe() -> None:
    h = History([_w(1, 0.0), _w(2, 0.02), _w(3, 0.01, probe="pgbouncer"), _w(4, 5.0, probe="pgbouncer")])
    assert write_gap(h, "haproxy").longest_gap_ms == pytest.approx(20, abs=1)
    assert write_gap(h, "pgbouncer").longest_gap_ms == pytest.approx(4990, abs=1)


# --------------------------------------------------------------------------- check_set


def _set_history() -> History:
    return History(
        [
            _w(1, 0.0),
            _w(2, 0.1),
            _w(3, 0.2, "info"),  # unknown outcome
            _w(4, 0.3, "info"),
            _w(5, 0.4, "fail"),  # definitely not applied ... supposedly
            _w(6, 0.5, "fail"),
            Op("haproxy", "read", 1, 0.6, 0.61, EPOCH, "ok"),  # reads never count as attempts
        ]
    )


def test_set_clean_with_indeterminate_outcomes() -> None:
    v = check_set(_set_history(), {1: 1, 2: 1, 3: 1})
    assert v.valid is True
    assert v.attempted == {1, 2, 3, 4, 5, 6} and v.acknowledged == {1, 2}
    assert v.recovered == {3} and v.indeterminate_missing == {4}
    assert not (v.lost or v.unexpected or v.duplicates or v.failed_but_present)


def test_set_detects_lost_write() -> None:
    v = check_set(_set_history(), {1: 1, 3: 1})
    assert v.valid is False and v.lost == {2}


def test_set_zero_count_is_missing() -> None:
    assert check_set(_set_history(), {1: 1, 2: 0}).lost == {2}


def test_set_detects_unexpected_value() -> None:
    v = check_set(_set_history(), {1: 1, 2: 1, 99: 1})
    assert v.valid is False and v.unexpected == {99} and not v.lost


def test_set_detects_duplicate() -> None:
    v = check_set(_set_history(), {1: 1, 2: 2})
    assert v.valid is False and v.duplicates == {2}


def test_set_duplicate_of_info_write_is_still_invalid() -> None:
    v = check_set(_set_history(), {1: 1, 2: 1, 3: 2})
    assert v.valid is False and v.duplicates == {3} and v.recovered == {3}


def test_set_failed_but_present_is_reported() -> None:
    v = check_set(_set_history(), {1: 1, 2: 1, 5: 1})
    assert v.failed_but_present == {5} and 5 in v.recovered
    assert v.valid is True  # indeterminate by default ...
    assert check_set(_set_history(), {1: 1, 2: 1, 5: 1}, strict=True).valid is False  # ... an anomaly when strict


def test_set_without_final_read_is_unknown() -> None:
    v = check_set(_set_history(), None)
    assert isinstance(v, SetVerdict) and v.valid is None and v.acknowledged == {1, 2}


def test_set_to_dict_is_json_with_sorted_lists() -> None:
    d = check_set(_set_history(), {2: 1, 1: 1, 99: 1})
    data = json.loads(json.dumps(d.to_dict()))
    assert data["attempted"] == [1, 2, 3, 4, 5, 6] and data["unexpected"] == [99] and data["valid"] is False


# --------------------------------------------------------------------------- split brain


def test_single_leader_is_valid() -> None:
    v = check_split_brain(History([_ack(i, A, i * 0.1, 1) for i in range(20)]))
    assert v.valid is True and v.anomalies == () and v.servers_seen == (A,) and v.timelines_seen == (1,)
    assert v.checked == 20 and v.unordered == 0


def test_clean_failover_is_valid() -> None:
    ops = [_ack(i, A, i * 0.1, 1, "patroni-1") for i in range(10)]
    ops += [_ack(100 + i, B, 5.0 + i * 0.1, 2, "patroni-2") for i in range(10)]
    h = History(ops)
    v = check_split_brain(h)
    assert v.valid is True, v.anomalies
    assert v.servers_seen == ("patroni-1", "patroni-2") and v.timelines_seen == (1, 2)
    assert leader_changes(h) == [LeaderChange(EPOCH + 5.0, "patroni-1", "patroni-2", 2)]


def test_failback_to_the_same_server_on_a_newer_timeline_is_valid() -> None:
    ops = [_ack(1, A, 0.0, 1), _ack(2, A, 0.1, 1), _ack(3, B, 1.0, 2), _ack(4, B, 1.1, 2)]
    ops += [_ack(5, A, 2.0, 3), _ack(6, A, 2.1, 3)]
    h = History(ops)
    assert check_split_brain(h).valid is True
    assert [(c.old, c.new, c.timeline) for c in leader_changes(h)] == [(A, B, 2), (B, A, 3)]


def test_missing_timeline_on_some_acks_does_not_fake_a_new_writer() -> None:
    ops = [_ack(1, A, 0.0, 1), _ack(2, A, 0.1, None), _ack(3, A, 0.2, 1)]
    ops += [_ack(4, B, 1.0, None), _ack(5, B, 1.1, 2), _ack(6, B, 1.2, None)]
    h = History(ops)
    assert check_split_brain(h).valid is True
    assert [(c.old, c.new, c.timeline) for c in leader_changes(h)] == [(A, B, 2)]


def test_detects_aba_alternation() -> None:
    ops = [_ack(1, A, 0.0), _ack(2, A, 0.1), _ack(3, B, 0.2), _ack(4, A, 0.3), _ack(5, B, 0.4)]
    v = check_split_brain(History(ops))
    assert v.valid is False
    alt = {a.servers: a for a in v.anomalies if a.kind == "alternation"}
    assert alt[(A, B)].ops_values == (4,) and alt[(A, B)].ms == pytest.approx(100)
    assert alt[(B, A)].ops_values == (5,)


def test_detects_overlapping_windows_and_honours_tolerance() -> None:
    ops = [_ack(i, A, float(i), node="patroni-1") for i in range(4)]  # A acks at 0,1,2,3 s
    ops += [_ack(10 + i, B, 1.5 + i, node="patroni-2") for i in range(3)]  # B acks at 1.5,2.5,3.5 s
    h = History(ops)
    strict = check_split_brain(h)
    assert strict.valid is False and {"overlap", "alternation"} <= _kinds(strict)
    overlap = next(a for a in strict.anomalies if a.kind == "overlap")
    assert overlap.ms == pytest.approx(1500)
    assert set(overlap.servers) == {"patroni-1", "patroni-2"}
    assert overlap.ops_values == (2, 3, 10, 11)
    assert check_split_brain(h, tolerance_ms=1000).valid is False
    assert check_split_brain(h, tolerance_ms=2000).valid is True


def test_detects_stale_timeline_ack_of_a_frozen_leader() -> None:
    """A (tl 1) is frozen with value 50 in flight; B is promoted (tl 2); A wakes and commits 50 8 s later."""
    ops = [_ack(i, A, i * 0.1, 1, "patroni-1") for i in range(1, 50)]
    ops += [_ack(100 + i, B, 5.0 + i * 0.5, 2, "patroni-2") for i in range(30)]
    ops.append(_ack(50, A, 13.0, 1, "patroni-1"))
    v = check_split_brain(History(ops))
    assert v.valid is False
    stale = [a for a in v.anomalies if a.kind == "stale-timeline"]
    assert len(stale) == 1
    assert stale[0].ops_values == (50,) and stale[0].ms == pytest.approx(8000)
    assert stale[0].servers == ("patroni-1", "patroni-2")
    assert "old timeline 1" in stale[0].detail
    assert "alternation" in _kinds(v)
    json.dumps(v.to_dict())


def test_stale_timeline_with_tolerance() -> None:
    ops = [_ack(1, A, 0.0, 1), _ack(2, B, 1.0, 2), _ack(3, A, 1.05, 1)]
    assert "stale-timeline" in _kinds(check_split_brain(History(ops)))
    assert check_split_brain(History(ops), tolerance_ms=100).valid is True


def test_missing_commit_ts_falls_back_to_completion_time() -> None:
    ops = [_w(1, 0.0, server=A, timeline=1), _w(2, 0.1, server=A, timeline=1)]
    ops += [_w(3, 1.0, server=B, timeline=2), _w(4, 0.5, server=A, timeline=1, dur=1.0)]  # completes at 1.5
    v = check_split_brain(History(ops))
    assert v.unordered == 4
    assert "stale-timeline" in _kinds(v) and v.valid is False


def test_unattributable_history_is_unknown() -> None:
    v = check_split_brain(History([_w(1, 0.0), _w(2, 0.1, "fail", server=A)]))
    assert v.valid is None and v.unattributed == 1 and v.checked == 0
    assert leader_changes(History()) == []


# --------------------------------------------------------------------------- compose


def test_compose_ranks_false_over_unknown_over_true() -> None:
    assert compose(True, None, False) is False
    assert compose(None, True) is None
    assert compose(True, True) is True
    assert compose() is True
    clean = check_split_brain(History([_ack(1, A, 0.0)]))
    assert compose(clean, check_set(History(), None)) is None
    assert compose(clean, check_set(History([_w(1, 0.0)]), {})) is False
