"""Fixtures of the failover suite: the cluster handle, the experiment factory, synchronous mode."""

from __future__ import annotations

import os

import allure
import pytest

from chaos.experiments.failover import FailoverExperiment, FailoverResult, container_logs
from chaos.faults import DynamicConfigChanged, Isolated, Killed, PatroniAPI, Paused, ProcessKilled, Stopped, Switchover
from topology import evidence
from topology.health import assert_healthy
from topology.names import ETCD_MEMBERS, PATRONI_NODES, container
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
    # a DynamicConfigChanged fault: the setting is undone even on Ctrl-C or a killed run (`chaos heal` finds the
    # journal), and against a target it is what the test declared (DynamicConfigChanged@patroni-api)
    setting = DynamicConfigChanged({"synchronous_mode": True}, PatroniAPI.published())
    with allure.step("enable synchronous_mode"):
        setting.__enter__()
        # the standby must be recorded in the DCS, not only named in synchronous_standby_names: a fault between
        # the two would leave no node allowed to take over (Patroni's safety rule, not the fault under test)
        wait_for(
            lambda: any(m.role == "sync_standby" for m in cluster.members()) and cluster.sync_standbys_in_dcs(),
            within=TIMEOUTS.cluster_ready,
            what="a sync_standby recorded in the /sync key",
        )
    yield
    with allure.step("restore synchronous_mode"):
        setting.__exit__(None, None, None)
        wait_for(
            lambda: not any(m.role == "sync_standby" for m in cluster.members()) and not cluster.sync_standbys_in_dcs(),
            within=TIMEOUTS.cluster_ready,
            what="no sync_standby left (REST API and /sync key)",
        )


#: WAL bytes one probe write produces, measured on this cluster (500 inserts: 354 bytes each, including the
#: commit record and the occasional full-page image). Turns Patroni's byte bound into a count of writes.
WAL_BYTES_PER_PROBE_WRITE = 354


#: Why the synchronous-mode isolation and freeze may breach their bound (ttl+probe+2000) on a noisy machine. Measured
#: 2026-12-01 with the project defaults: isolation 22.5 s and 24.2 s (that promotion took 1.4 s: it restored two
#: segments the isolated leader had still archived), freeze 22.3-22.6 s (libpq multi-host 24.3 s, bound
#: ttl+probe+4000).
#: Floor: the lease expires ttl after the last renewal, then the candidate probes every known member and Patroni
#: hard-codes that probe's timeout at 2 s (`probe`; DPG_MEMBER_PROBE_TIMEOUT_MS on the opt-in patched image); an
#: isolated (DROP) or frozen (kernel accepts, process never answers) leader always costs the full probe, then
#: the promotion. That leaves ~1.5 s for noise; CI once measured ttl+4.7 s
#: (2026-11-26, before the failover tuning). A hard kill fails the probe at once (no route to host): strict.
PROBE_FLOOR = (
    "Synchronous mode, leader unreachable but not gone: the candidate waits out Patroni's member probe "
    "of it (hard-coded 2 s) after the lease expires, so the gap is ttl + probe + ~0.5 s (measured "
    "22.3-22.6 s, once 24.2 s; bound ttl + probe + 2 s): only ~1.5 s is left for a noisy machine or a "
    "slow promotion. Only this SLO breach is expected; a lost write, split brain or an unhealthy "
    "cluster still fails."
)


def async_loss_bound() -> int:
    """With asynchronous replication Patroni promises at most maximum_lag_on_failover bytes of loss."""
    return int(os.environ.get("DPG_MAXIMUM_LAG_ON_FAILOVER", "1048576")) // WAL_BYTES_PER_PROBE_WRITE


def others(node: str) -> list[str]:
    """The containers a Patroni node is cut off from when it is isolated: its peers and every etcd member."""
    return [container(n) for n in PATRONI_NODES if n != node] + [container(e) for e in ETCD_MEMBERS]


#: every leader fault of this suite, as the experiment injects it (given the leader and the history for its marks);
#: suites/consistency runs the same faults under its list-append clients
LEADER_FAULTS = {
    "switchover": lambda leader, h: Switchover(history=h),
    "graceful_stop": lambda leader, h: Stopped(container(leader), history=h),
    "postmaster_crash": lambda leader, h: ProcessKilled(container(leader), pidfile="$PGDATA/postmaster.pid", history=h),
    "hard_kill": lambda leader, h: Killed(container(leader), history=h),
    "isolation": lambda leader, h: Isolated(container(leader), from_=others(leader), history=h),
    "freeze": lambda leader, h: Paused(container(leader), history=h),
}
#: the faults after which the deposed leader still runs: the experiment pins it (pin_leader) to watch it demote
PINNED = frozenset({"isolation", "freeze"})


class SLOBreach(AssertionError):
    """A write gap above its SLO (kept apart from data-safety failures so a known breach can be marked)."""


class SplitBrainFound(AssertionError):
    """The split-brain checker found an anomaly (its own type, so a known one can be marked as exactly that:
    an xfail without `raises=` would also pass on a setup error or an unhealthy cluster)."""


def assert_failover_ok(result: FailoverResult, *, allow_loss: int = 0) -> None:
    """The verdict of one scenario: no lost/phantom/duplicate write, no split brain, then the SLO per entry point.

    Data-safety problems are reported first and are never an SLOBreach."""
    assert_data_safe(result, allow_loss=allow_loss)
    breaches = result.breaches()
    if breaches:
        raise SLOBreach(f"{result.fault}: SLO breach: " + " | ".join(breaches) + phase_line(result))


def assert_data_safe(result: FailoverResult, *, allow_loss: int = 0) -> None:
    """No lost (beyond `allow_loss`), phantom or duplicate write and no split brain; a split brain raises its own
    type so that a known one can be marked as exactly that."""
    problems = data_safety_problems(result.set_verdict, result.split_brain, allow_loss=allow_loss)
    if result.split_brain.valid is False:
        raise SplitBrainFound(f"{result.fault}: " + " | ".join(problems))
    assert not problems, f"{result.fault}: " + " | ".join(problems) + phase_line(result)


def phase_line(result: FailoverResult) -> str:
    """The nodes' own phase marks in the failure message too: CI keeps its log, not always its Allure results
    (2026-12-03: a 6 s postmaster crash in CI whose phases nobody could read afterwards)."""
    marks = sorted(result.marks_ms.items(), key=lambda kv: kv[1])
    where = ", ".join(f"{name} {ms}" for name, ms in marks) or "no phase marks in the nodes' logs"
    return f" || {result.old_leader} -> {result.new_leader}, ms after the fault: {where}"


def data_safety_problems(sv, sb, *, allow_loss: int = 0) -> list[str]:
    """Lost (beyond `allow_loss`), unexpected or duplicate writes and split brain, as one list of problems."""
    problems = []
    if len(sv.lost) > allow_loss:
        problems.append(
            f"data loss: {len(sv.lost)} acknowledged writes lost (allowed {allow_loss}): {sorted(sv.lost)[:10]}"
        )
    if sv.unexpected:
        problems.append(f"unexpected rows never attempted: {sorted(sv.unexpected)[:10]}")
    if sv.duplicates:
        problems.append(f"duplicate rows: {sorted(sv.duplicates)[:10]}")
    if sb.valid is False:
        problems.append("split brain: " + "; ".join(a.detail for a in sb.anomalies)[:500])
    return problems
