"""Fixtures of the monitoring suite: every stack Prometheus scrapes, and the health gate that ends each test."""

from __future__ import annotations

import allure
import pytest

from topology.health import assert_healthy
from topology.timeouts import TIMEOUTS

#: what the alert scenarios run on (Traefik before monitoring: Prometheus scrapes it and probes its routers)
STACKS = ["patroni", "pgbouncer", "traefik", "vector", "redis", "monitoring"]


@pytest.fixture(scope="session")
def scraped_stacks(write_paths_stacks, vector_stack, redis_stack, monitoring_stack):
    """The docker client, once every stack with a static scrape target runs (Citus is discovered if present)."""
    return monitoring_stack


@pytest.fixture
def health_gate(scraped_stacks):
    """Steady state before the scenario, the one health gate after it (the fault is healed by then)."""
    with allure.step("steady state"):
        assert_healthy(scraped_stacks, STACKS, within=TIMEOUTS.cluster_ready)
    yield scraped_stacks
    with allure.step("final health gate"):
        assert_healthy(scraped_stacks, STACKS, within=TIMEOUTS.rejoin)
