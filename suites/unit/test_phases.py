"""chaos.checkers.phases: the marks of a failover read from the nodes' own log lines, and their aggregate."""

from __future__ import annotations

import pytest

from chaos.checkers.phases import describe, failover_marks, parse_docker_log, within_failover
from reports.aggregate import aggregate, cpu_cells, render_text, steal_cells, step_cells

pytestmark = pytest.mark.unit

OLD = """2026-12-01T10:04:55.931000000Z 2026-12-01 10:04:55,931 INFO: Demoting self (graceful)
2026-12-01T10:04:56.132000000Z 2026-12-01 10:04:56.132 UTC [60] LOG:  received fast shutdown request
not a docker line
2026-12-01T10:04:56.839000000Z 2026-12-01 10:04:56.839 UTC [60] LOG:  database system is shut down
2026-12-01T10:04:57.100000000Z 2026-12-01 10:04:57,100 INFO: Leader key released
2026-12-01T10:05:03.000000000Z 2026-12-01 10:05:03.000 UTC [70] LOG:  database system is ready to accept connections
"""
NEW = """2026-12-01T10:04:50.000000000Z 2026-12-01 10:04:50.000 UTC [9] LOG:  database system is ready to accept connections
2026-12-01T10:04:57.250000000Z 2026-12-01 10:04:57,250 INFO: Cleaning up failover key after acquiring leader lock...
2026-12-01T10:04:57.300000000Z 2026-12-01 10:04:57,300 INFO: promoted self to leader by acquiring session lock
2026-12-01T10:04:57.400000000Z server promoting
2026-12-01T10:04:57.700000000Z 2026-12-01 10:04:57.700 UTC [9] LOG:  database system is ready to accept connections
"""
INJECTED = parse_docker_log("2026-12-01T10:04:55.500000000Z x")[0][0]


def test_docker_timestamps_keep_their_fraction():
    ((t, msg),) = parse_docker_log("2026-12-01T10:04:55.123456789Z hello")
    assert msg == "hello" and round(t % 60, 3) == 55.123


def test_marks_are_the_first_of_each_after_the_injection_on_its_own_node():
    marks = failover_marks(parse_docker_log(OLD), parse_docker_log(NEW), injected_wall=INJECTED)
    assert marks == {
        "stop_requested": 632,
        "stopped": 1339,
        "key_released": 1600,
        "lock_acquired": 1750,
        "promote_requested": 1900,
        "accepting_writes": 2200,
    }
    # the new leader's start before the fault and the old leader's restart as a replica are not its promotion


def test_a_crash_has_no_shutdown_marks():
    old = parse_docker_log(
        "2026-12-01T10:04:55.520000000Z dpg-postmaster-watch: postmaster 60 exited; woke "
        "Patroni's HA loop in 3 ms (HTTP 200)\n"
        "2026-12-01T10:04:56.000000000Z 2026-12-01 10:04:56,000 INFO: Primary crashed. "
        "Failing over.\n"
    )
    marks = failover_marks(old, parse_docker_log(NEW), injected_wall=INJECTED)
    assert "stop_requested" not in marks and marks["crash_detected"] == 500 and marks["patroni_woken"] == 20


def test_aggregate_shows_the_median_of_each_mark():
    rows = [
        {
            "kind": "failover",
            "fault": "switchover",
            "gaps_ms": {"haproxy": 1000 + i},
            "marks_ms": {"stopped": 300 + 100 * i, "accepting_writes": 900 + i},
        }
        for i in range(3)
    ]
    rows.append({"kind": "failover", "fault": "switchover", "gaps_ms": {"haproxy": 999}})  # an older row: no marks
    text = render_text(aggregate(rows))
    assert "where the gap went" in text
    marks_table = text.split("where the gap went")[1]
    line = next(row for row in marks_table.splitlines() if row.startswith("switchover"))
    assert line.split() == ["switchover", "3", "400", "901"]


def test_describe_lists_marks_in_failover_order_and_the_gaps():
    text = describe({"accepting_writes": 900, "stopped": 300}, {"haproxy": 1000.4, "multihost": None})
    assert text.index("stopped") < text.index("accepting_writes") and "gap haproxy" in text
    assert "multihost" not in text


# the shapes logged on 2026-12-03 (PostgreSQL 17.12, pgBackRest 2.55.1), with a routine checkpoint and archive push
# before the fault that must not be read as the shutdown's
OLD_SHUTDOWN = """2026-12-01T10:04:55.600000000Z 2026-12-01 10:04:55.600 UTC [131] LOG:  checkpoint complete: wrote 3 buffers (0.0%); 0 WAL file(s) added
2026-12-01T10:04:55.700000000Z 2026-12-01 10:04:55.700 P00   INFO: archive-push command end: completed successfully (40ms)
2026-12-01T10:04:56.000000000Z 2026-12-01 10:04:56.000 UTC [125] LOG:  received fast shutdown request
2026-12-01T10:04:56.165000000Z 2026-12-01 10:04:56.165 UTC [131] LOG:  checkpoint complete: wrote 14 buffers (0.2%); 0 WAL file(s) added
2026-12-01T10:04:56.480000000Z 2026-12-01 10:04:56.480 P00   INFO: archive-push command end: completed successfully (292ms)
2026-12-01T10:04:56.610000000Z 2026-12-01 10:04:56.610 UTC [125] LOG:  database system is shut down
"""
NEW_PROMOTION = """2026-12-01T10:04:57.300000000Z 2026-12-01 10:04:57,300 INFO: promoted self to leader by acquiring session lock
2026-12-01T10:04:57.310000000Z server promoting
2026-12-01T10:04:57.400000000Z 2026-12-01 10:04:57.400 UTC [257] LOG:  received promote request
2026-12-01T10:04:57.650000000Z 2026-12-01 10:04:57.650 UTC [257] LOG:  selected new timeline ID: 5
2026-12-01T10:04:57.730000000Z 2026-12-01 10:04:57.730 UTC [257] LOG:  archive recovery complete
2026-12-01T10:04:57.780000000Z 2026-12-01 10:04:57.780 UTC [252] LOG:  database system is ready to accept connections
"""


def test_the_shutdown_and_the_promotion_are_split_into_their_steps():
    marks = failover_marks(parse_docker_log(OLD_SHUTDOWN), parse_docker_log(NEW_PROMOTION), injected_wall=INJECTED)
    assert marks == {
        "stop_requested": 500,
        "shutdown_checkpoint_done": 665,  # not the routine checkpoint 400 ms before the request
        "last_segment_archived": 980,  # not the routine push before it
        "stopped": 1110,
        "lock_acquired": 1800,
        "promote_requested": 1810,
        "promote_received": 1900,
        "timeline_selected": 2150,
        "recovery_complete": 2230,
        "accepting_writes": 2280,
    }


def test_an_anchored_mark_without_its_anchor_is_left_out():
    only_routine = "\n".join(OLD_SHUTDOWN.splitlines()[:2])  # a checkpoint and a push, but no shutdown request
    marks = failover_marks(parse_docker_log(only_routine), [], injected_wall=INJECTED - 1)
    assert "shutdown_checkpoint_done" not in marks and "last_segment_archived" not in marks


def test_steps_are_the_time_from_each_mark_to_the_next_per_run():
    rows = [
        {
            "kind": "failover",
            "fault": "switchover",
            "gaps_ms": {"haproxy": 1000},
            "marks_ms": {"stop_requested": 100, "stopped": 400 + 10 * i, "accepting_writes": 1000 + 100 * i},
            "cpu": {"host_busy": 0.8 + i / 100, "steal": 0.02 * i},
        }
        for i in range(4)
    ]
    rows.append(  # a run without `stopped`: its step is its own pair, too rare to list
        {
            "kind": "failover",
            "fault": "switchover",
            "gaps_ms": {"haproxy": 1},
            "marks_ms": {"stop_requested": 0, "accepting_writes": 5},
        }
    )
    agg = aggregate(rows)
    steps = {s[1]: s[2:] for s in step_cells(agg)}
    assert steps == {
        "stop_requested → stopped": ("4", "310", "330", "330"),
        "stopped → accepting_writes": ("4", "690", "870", "870"),
    }
    # nearest-rank over 4 runs: p50 is the 2nd value, p95 the 4th
    assert cpu_cells(agg) == [("switchover", "4", "81% / 83%", "2% / 6%")]
    text = render_text(agg)
    assert "step by step" in text and "CPU in the failover window" in text


def test_the_worst_gap_of_each_run_is_split_by_the_steal_in_its_window():
    def row(steal, gaps):
        return {"kind": "failover", "fault": "switchover", "gaps_ms": gaps, "cpu": {"host_busy": 0.9, "steal": steal}}

    rows = [
        row(0.01, {"haproxy": 900, "traefik": 950}),  # worst of the run: 950
        row(0.049, {"haproxy": 1000, "traefik": None}),
        row(0.05, {"haproxy": 2000, "traefik": 2100}),  # at the split: stolen
        row(0.30, {"haproxy": 1800}),
        {"kind": "failover", "fault": "switchover", "gaps_ms": {"haproxy": 5000}},  # no reading: in neither
    ]
    assert steal_cells(aggregate(rows)) == [("switchover", "2", "950 / 1000", "2", "1800 / 2100")]
    assert "by steal" in render_text(aggregate(rows))


def test_steps_follow_the_logged_order_and_end_at_accepting_writes():
    # the postmaster watcher wakes Patroni just after PostgreSQL logged "shut down" (MARKS lists it before), and a
    # crashed leader's rejoin logs a shutdown request seconds after the new leader took writes: neither is a step
    rows = [
        {
            "kind": "failover",
            "fault": "postmaster_crash",
            "gaps_ms": {"haproxy": 900},
            "marks_ms": {
                "patroni_woken": 5,
                "crash_detected": 120,
                "stopped": 4900,
                "stop_requested": 4800,
                "key_released": 250,
                "lock_acquired": 480,
                "accepting_writes": 760,
            },
        }
        for _ in range(3)
    ]
    rows += [
        {
            "kind": "failover",
            "fault": "switchover",
            "gaps_ms": {"haproxy": 900},
            "marks_ms": {"stop_requested": 100, "patroni_woken": 420, "stopped": 400, "accepting_writes": 900},
        }
        for _ in range(3)
    ]
    steps = {(s[0], s[1]): s[3] for s in step_cells(aggregate(rows))}
    assert steps == {
        ("postmaster_crash", "patroni_woken → crash_detected"): "115",
        ("postmaster_crash", "crash_detected → key_released"): "130",
        ("postmaster_crash", "key_released → lock_acquired"): "230",
        ("postmaster_crash", "lock_acquired → accepting_writes"): "280",
        ("switchover", "stop_requested → stopped"): "300",
        ("switchover", "stopped → patroni_woken"): "20",
        ("switchover", "patroni_woken → accepting_writes"): "480",
    }
    assert aggregate(rows).fault("postmaster_crash").marks["stopped"].n == 0


def test_marks_after_the_new_leader_accepts_writes_are_the_rejoin_not_the_failover():
    old = [(10.0, "LOG:  received fast shutdown request"), (12.0, "LOG:  database system is shut down")]
    new = [(11.0, "LOG:  database system is ready to accept connections")]
    assert failover_marks(old, new, injected_wall=9.0) == {"stop_requested": 1000, "accepting_writes": 2000}
    assert within_failover({"stopped": 5}) == {"stopped": 5}
