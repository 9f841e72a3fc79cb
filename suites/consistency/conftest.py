"""Fixtures of the consistency suite: list-append experiments (plain, and through the failover experiment), each
ending with the health gate; the failover suite's `cluster` fixture as it is."""

from __future__ import annotations

import allure
import pytest

from chaos.experiments.failover import container_logs
from chaos.experiments.txn import ListAppendFailover, TxnExperiment
from suites.failover.conftest import cluster, synchronous_mode  # noqa: F401 - fixtures
from topology import evidence
from topology.health import assert_healthy
from topology.names import PATRONI_NODES
from topology.timeouts import TIMEOUTS

STACKS = ["patroni", "pgbouncer", "traefik"]


def _gate(client, request) -> None:
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and (rep.failed or (rep.skipped and hasattr(rep, "wasxfail"))):
        for node, log in container_logs(client, list(PATRONI_NODES)).items():
            evidence.attach_text(f"log {node}", log)
    with allure.step("final health gate"):
        assert_healthy(client, STACKS, within=TIMEOUTS.rejoin)


@pytest.fixture
def txn(write_paths_stacks, request):
    """Build list-append experiments; always end with the health gate."""

    def make(scenario: str, **kwargs) -> TxnExperiment:
        return TxnExperiment(write_paths_stacks, scenario, **kwargs)

    yield make
    _gate(write_paths_stacks, request)


@pytest.fixture
def txn_failover(write_paths_stacks, request):
    """Build failover experiments with list-append clients running through them; always end with the health gate."""

    def make(fault: str, txn: TxnExperiment, **kwargs) -> ListAppendFailover:
        return ListAppendFailover(write_paths_stacks, fault, txn, **kwargs)

    yield make
    _gate(write_paths_stacks, request)
