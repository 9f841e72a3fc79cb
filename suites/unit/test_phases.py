"""chaos.checkers.phases: the marks of a failover read from the nodes' own log lines, and their aggregate."""

from __future__ import annotations

import pytest

from chaos.checkers.phases import describe, failover_marks, parse_docker_log
from reports.aggregate import aggregate, render_text

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
