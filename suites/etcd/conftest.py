"""Fixtures of the etcd suite: the etcd handle, the DCS-outage experiment factory, failsafe_mode on/off.

The failover suite's `cluster`/`experiment` fixtures (and its report hook) are reused as they are."""

from __future__ import annotations

import allure
import pytest

from chaos.experiments.dcs_outage import DcsOutageExperiment
from chaos.experiments.failover import container_logs
from chaos.faults import DynamicConfigChanged, PatroniAPI
from suites.failover.conftest import cluster, experiment  # noqa: F401 - fixtures
from topology import evidence
from topology.etcd import EtcdCluster
from topology.health import assert_healthy
from topology.names import ETCD_MEMBERS, PATRONI_NODES
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for


@pytest.fixture
def etcd(write_paths_stacks) -> EtcdCluster:
    return EtcdCluster(write_paths_stacks)


@pytest.fixture
def dcs_outage(write_paths_stacks, etcd, request):
    """Build DCS-outage experiments; always end with the health gate and all etcd members healthy."""

    def make(fault: str, **kwargs) -> DcsOutageExperiment:
        return DcsOutageExperiment(write_paths_stacks, fault, **kwargs)

    yield make
    rep = getattr(request.node, "rep_call", None)
    # a failure or a known failure (xfail): the logs say which one it was and why
    if rep is not None and (rep.failed or (rep.skipped and hasattr(rep, "wasxfail"))):
        for member, log in container_logs(write_paths_stacks, [*ETCD_MEMBERS, *PATRONI_NODES], tail=400).items():
            evidence.attach_text(f"log {member}", log)
    with allure.step("final health gate (Patroni, routers, 3 healthy etcd members)"):
        wait_for(lambda: etcd.healthy_count() == 3, within=TIMEOUTS.cluster_ready, what="3 healthy etcd members")
        assert_healthy(write_paths_stacks, ["patroni", "pgbouncer", "traefik"], within=TIMEOUTS.rejoin)


@pytest.fixture(params=[False, True], ids=["failsafe_off", "failsafe_on"])
def failsafe_mode(request, write_paths_stacks):
    """Run the test with Patroni's failsafe_mode off (the default) and on (dynamic config, undone after)."""
    if not request.param:
        yield False
        return
    api = PatroniAPI.published()
    with DynamicConfigChanged({"failsafe_mode": True}, api):
        # the leader publishes the members it will ask for permission to go on once etcd is gone
        members = wait_for(
            lambda: api.request("GET", "/failsafe").json(),
            within=TIMEOUTS.cluster_ready,
            what="the leader's /failsafe member list",
        )
        evidence.attach_json("failsafe members", members)
        yield True
