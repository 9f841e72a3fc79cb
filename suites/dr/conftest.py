"""Fixtures of the DR drills: the repository handle, the drill's data set, entry points, the final health gate."""

from __future__ import annotations

import time

import allure
import pytest

from chaos.experiments.drill import Drill, live_query
from topology import endpoints
from topology.backup import Repository
from topology.health import assert_healthy
from topology.inventory import current
from topology.names import SUPERUSER_PASSWORD
from topology.timeouts import TIMEOUTS

#: Static tables the drills fingerprint: written once here, never by a probe, so a restore must match them exactly.
LEDGER_ROWS = 50_000
DATA_SQL = f"""
CREATE SCHEMA IF NOT EXISTS dr;
CREATE TABLE IF NOT EXISTS dr.ledger (id bigint PRIMARY KEY, account int NOT NULL, amount numeric(12,2) NOT NULL,
                                      note text NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_account ON dr.ledger (account, id);
INSERT INTO dr.ledger SELECT i, i % 997, round((sin(i) * 1000)::numeric, 2), 'entry-' || i
  FROM generate_series(1, {LEDGER_ROWS}) i ON CONFLICT (id) DO NOTHING;
"""
STATIC_TABLES = ["dr.ledger"]


def primary() -> endpoints.Endpoint:
    """Writes go through HAProxy's RW port, as the application's would."""
    return endpoints.haproxy()


def superuser() -> endpoints.Endpoint:
    ep = endpoints.haproxy()
    return endpoints.Endpoint(
        "haproxy-su", "patroni", ep.host, ep.port, user="postgres", password=SUPERUSER_PASSWORD, dbname=ep.dbname
    )


@pytest.fixture(autouse=True)
def _never_on_a_target():
    """The drills restore and rebuild the cluster from its backups (data volumes destroyed, etcd wiped, a scratch
    node started on the repository): nothing a suite may do to a deployment it did not create."""
    inv = current()
    if not inv.rebuildable:
        pytest.skip(
            f"DR drills destroy and rebuild containers and volumes: they run on the embedded topology only, not on "
            f"{inv.kind} {inv.name} (docs/disaster-recovery.md)"
        )


@pytest.fixture
def repo(patroni_stack) -> Repository:
    r = Repository(patroni_stack)
    with allure.step("repository ready (stanza created, check passes)"):
        r.wait_ready()
    return r


@pytest.fixture
def dr_data(patroni_stack):
    """The drills' static data set, created once (idempotent)."""
    run = live_query(primary())
    for statement in DATA_SQL.strip().split(";\n"):
        if statement.strip():
            run(statement)
    return STATIC_TABLES


@pytest.fixture
def has_backup(repo):
    """At least one backup exists (a drill may run alone)."""
    if not repo.backups():
        with allure.step("take a first full backup"):
            repo.backup("full")
            # a time target within the backup's own stop second would select no backup (stop is in whole seconds)
            time.sleep(2)
    return repo


@pytest.fixture
def drill(request, patroni_stack):
    """The drill's phase timer; the test ends with the Patroni health gate, whatever the drill did."""
    d = Drill(request.node.name.removeprefix("test_").split("[")[0].replace("_", " "))
    yield d
    with allure.step("final health gate"):
        assert_healthy(patroni_stack, ["patroni"], within=TIMEOUTS.rejoin)
