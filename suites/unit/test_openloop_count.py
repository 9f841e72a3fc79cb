"""The open-loop load counts what it offered: from pgbench's summary when a run ended by itself, from its progress
lines when the load stopped it (pgbench prints no summary then; CI on 2026-12-03 counted 0 transactions for a path
whose one pgbench run was stopped at the end)."""

from __future__ import annotations

import allure

from chaos.clients.load.openloop import PathLoad, count_run
from topology.endpoints import Endpoint

pytestmark = [allure.parent_suite("unit"), allure.suite("load")]

EP = Endpoint("haproxy", "patroni", "127.0.0.1", "5000")
STOPPED = """pgbench (17.2)
progress: 1.0 s, 86.0 tps, lat 0.903 ms stddev 0.985, 0 failed, lag 0.294 ms
progress: 2.0 s, 106.0 tps, lat 0.928 ms stddev 1.214, 2 failed, lag 18.452 ms
progress: 3.0 s, 95.0 tps, lat 0.791 ms stddev 0.620, 0 failed, lag 0.377 ms
"""
ENDED = (
    STOPPED
    + """transaction type: multiple scripts
number of transactions actually processed: 301
number of failed transactions: 3 (0.996%)
tps = 98.502561 (without initial connection time)
"""
)


def test_a_stopped_run_is_counted_from_its_progress_lines():
    p = PathLoad(EP, 100.0)
    count_run(p, STOPPED)
    assert (p.transactions, p.failed, p.counted_from_progress) == (287, 2, 1)
    assert p.max_lag_ms == 18.452


def test_a_run_that_ended_by_itself_is_counted_from_its_summary():
    p = PathLoad(EP, 100.0)
    count_run(p, ENDED)
    assert (p.transactions, p.failed, p.counted_from_progress) == (301, 3, 0)


def test_runs_add_up_and_a_refused_start_is_an_error_not_a_count():
    p = PathLoad(EP, 100.0)
    count_run(p, ENDED)
    count_run(p, STOPPED)
    count_run(p, 'pgbench: error: connection to server at "127.0.0.1", port 5000 failed: Connection refused\n')
    assert p.transactions == 301 + 287
    assert p.errors == ['pgbench: error: connection to server at "127.0.0.1", port 5000 failed: Connection refused']


def test_pgbench_reaches_libpq_multi_host_with_its_session_attrs_and_no_password():
    from chaos.clients.load.pgbench import conninfo

    ep = Endpoint("multihost", "patroni", "127.0.0.1,127.0.0.1", "5432,5433", "app", "s3cret", "db",
                  (("target_session_attrs", "read-write"),))  # fmt: skip
    shown = conninfo(ep, "load")
    assert "host=127.0.0.1,127.0.0.1 port=5432,5433" in shown
    assert "target_session_attrs=read-write" in shown
    assert "s3cret" not in shown
