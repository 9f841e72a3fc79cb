"""Fixtures of the Citus suite: the cluster handle, its bounds (citus.yaml + the live connection timeout), and
a fault-proxy route for coordinator -> worker-2 traffic."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from topology.citus import CitusCluster
from topology.errors import TopologyError
from topology.proxy_routes import proxy_route

CONFIG = Path(__file__).with_name("citus.yaml")
#: the fault proxy's route to worker-2: listens on 25008 inside the proxy container (25009 is Redis's)
PROXY_NAME = "dpg-citus-worker-2"
PROXY_HOST, PROXY_PORT = "toxiproxy", 25008


@dataclass(frozen=True)
class CitusBounds:
    node_connection_timeout_ms: int  # as the coordinator runs it (SHOW), set in compose/citus.yml
    error_margin_ms: float
    client_timeout_factor: float
    keys_per_worker: int
    latency_ms: int
    latency_samples: int
    multi_shard_samples: int

    @property
    def fail_within_ms(self) -> float:
        """A query needing a worker that does not answer must have failed by then."""
        return self.node_connection_timeout_ms + self.error_margin_ms

    @property
    def client_timeout_ms(self) -> int:
        return int(self.node_connection_timeout_ms * self.client_timeout_factor)


@pytest.fixture(scope="session")
def citus(citus_stack) -> CitusCluster:
    return CitusCluster()


@pytest.fixture(scope="session")
def bounds(citus) -> CitusBounds:
    try:
        raw = yaml.safe_load(CONFIG.read_text())
        values = {
            k: raw[k]
            for k in (
                "error_margin_ms",
                "client_timeout_factor",
                "keys_per_worker",
                "latency_ms",
                "latency_samples",
                "multi_shard_samples",
            )
        }
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise TopologyError(f"cannot read {CONFIG}: {exc!r}") from None
    return CitusBounds(node_connection_timeout_ms=citus.setting_ms("citus.node_connection_timeout"), **values)


@pytest.fixture(scope="module")
def worker2_route(citus_stack, toxiproxy_stack):
    """A fault-proxy route toxiproxy:25008 -> citus-worker-2:5432 (Toxiproxy API), removed after the module.
    citus_stack comes first: without a Citus image the test is skipped before the proxy starts."""
    with proxy_route(PROXY_NAME, PROXY_PORT, "citus-worker-2:5432") as name:
        yield name
