"""Fixtures of the failover suite: the cluster handle, the experiment factory, synchronous mode."""
from __future__ import annotations

import os

import allure
import pytest

from chaos.experiment import FailoverExperiment, FailoverResult, container_logs
from chaos.faults import PatroniAPI
from reports import evidence
from topology.health import assert_healthy
from topology.names import PATRONI_NODES
from topology.patroni import PatroniCluster
from topology.timeouts import TIMEOUTS
from topology.waiting import WaitTimeout, wait_for


@pytest.fixture
def cluster(write_paths_stacks) -> PatroniCluster:
    return PatroniCluster(write_paths_stacks)


@pytest.fixture
def experiment(write_paths_stacks, request):
    """Build experiments; on test failure attach the Patroni nodes' logs; always end with the health gate."""
    def make(fault: str, **kwargs) -> FailoverExperiment:
        return FailoverExperiment(write_paths_stacks, fault, **kwargs)
    yield make

    def attach_logs() -> None:
        for node, log in container_logs(write_paths_stacks, list(PATRONI_NODES)).items():
            evidence.attach_text(f"log {node}", log)
    rep = getattr(request.node, "rep_call", None)
    call_failed = rep is not None and rep.failed
    if call_failed:
        attach_logs()
    with allure.step("final health gate"):
        try:
            assert_healthy(write_paths_stacks, ["patroni", "pgbouncer", "traefik"], within=TIMEOUTS.rejoin)
        except WaitTimeout:
            if not call_failed:
                attach_logs()
            raise


@pytest.fixture
def synchronous_mode(cluster):
    """Turn Patroni's synchronous_mode on for one test (dynamic config), and back off afterwards."""
    api = PatroniAPI.published()
    with allure.step("enable synchronous_mode"):
        api.request("PATCH", "/config", json={"synchronous_mode": True})
        wait_for(lambda: any(m.role == "sync_standby" for m in cluster.members()),
                 within=TIMEOUTS.cluster_ready, what="a sync_standby")
    yield
    with allure.step("disable synchronous_mode"):
        api.request("PATCH", "/config", json={"synchronous_mode": False})
        wait_for(lambda: not any(m.role == "sync_standby" for m in cluster.members()),
                 within=TIMEOUTS.cluster_ready, what="no sync_standby left")


#: WAL bytes one probe write produces, measured on this cluster (500 inserts: 354 bytes each, including the
#: commit record and the occasional full-page image). Turns Patroni's byte bound into a count of writes.
WAL_BYTES_PER_PROBE_WRITE = 354


#: WAL archiving to the pgBackRest repository is on unless DPG_PGBACKREST_REPO_HOST is set empty (compose default)
ARCHIVING = os.environ.get("DPG_PGBACKREST_REPO_HOST", "pgbackrest") != ""

#: Measured in CI on 2026-11-25 with archiving on: the old primary's fast shutdown waits for the archiver's final
#: archive-push (0.4-0.8 s over TLS), and the promoting replica fetches timeline history files through
#: restore_command (pgbackrest archive-get, 0.1-0.3 s per call, 3-5 calls) before it accepts writes.
#: On 2026-11-26 the project's CI (DR and etcd suites first on the same cluster) saw the switchover breach 3 s (its
#: numbers are lost: that run was killed at its time limit); a local rerun of that order measured switchover 3.6 s
#: and synchronous-mode hard kill ttl+3.7 s, with a compile running beside it (a noisy machine, as CI may be).
ARCHIVING_COST = ("WAL archiving (pgBackRest over TLS) is on: the old primary's shutdown waits for its last "
                  "archive-push (0.4-0.8 s) and the promotion runs 3-5 archive-get calls for history files "
                  "(0.1-0.3 s each). Benchmark with archiving (README, N=5): switchover p50 2.2 s but 1 of 5 runs "
                  "4.1 s, double switchover p50 3.2 s; seen in CI: sync-mode isolation ttl+4.7 s, sync-mode hard "
                  "kill ttl+3.7 s. Only this SLO breach is expected; lost writes, split brain or an unhealthy "
                  "cluster still fail. With DPG_PGBACKREST_REPO_HOST= (archiving off) the test is strict.")


def async_loss_bound() -> int:
    """With asynchronous replication Patroni promises at most maximum_lag_on_failover bytes of loss."""
    return int(os.environ.get("DPG_MAXIMUM_LAG_ON_FAILOVER", "1048576")) // WAL_BYTES_PER_PROBE_WRITE


class SLOBreach(AssertionError):
    """A write gap above its SLO (kept apart from data-safety failures so a known breach can be marked)."""


def assert_failover_ok(result: FailoverResult, *, allow_loss: int = 0) -> None:
    """The verdict of one scenario: no lost/phantom/duplicate write, no split brain, then the SLO per entry point.

    Data-safety problems are reported first and are never an SLOBreach."""
    problems = data_safety_problems(result.set_verdict, result.split_brain, allow_loss=allow_loss)
    assert not problems, f"{result.fault}: " + " | ".join(problems)
    breaches = result.breaches()
    if breaches:
        raise SLOBreach(f"{result.fault}: SLO breach: " + " | ".join(breaches))


def data_safety_problems(sv, sb, *, allow_loss: int = 0) -> list[str]:
    """Lost (beyond `allow_loss`), unexpected or duplicate writes and split brain, as one list of problems."""
    problems = []
    if len(sv.lost) > allow_loss:
        problems.append(f"data loss: {len(sv.lost)} acknowledged writes lost (allowed {allow_loss}): "
                        f"{sorted(sv.lost)[:10]}")
    if sv.unexpected:
        problems.append(f"unexpected rows never attempted: {sorted(sv.unexpected)[:10]}")
    if sv.duplicates:
        problems.append(f"duplicate rows: {sorted(sv.duplicates)[:10]}")
    if sb.valid is False:
        problems.append("split brain: " + "; ".join(a.detail for a in sb.anomalies)[:500])
    return problems
