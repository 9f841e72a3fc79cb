"""Latency between the coordinator and worker-2 (fault proxy `latency` toxic on a pg_dist_poolinfo route).

Why a route: the kernel here has no netem, so delay is added by the Toxiproxy-API fault proxy. Citus's own
per-node connection override (pg_dist_poolinfo, meant for a pooler in front of a worker) sends the
coordinator's connections to worker-2 through toxiproxy:25008 -> citus-worker-2:5432 for this test only; the
node entry, placements and metadata stay untouched, and worker-2 itself confirms its coordinator sessions come
from the proxy's address.

Measured (evidence + measurements.jsonl): p50/p95 of router queries on each worker's keys and of a multi-shard
count, without and with the toxic. Asserted (physical bounds, no tuning to noise): with the toxic, worker-2's
router p95 and the multi-shard p95 are at least the injected latency (the delay is on the path), worker-1's
router p95 stays below it (it is not); no query fails; the co-located join is unchanged afterwards.
"""

from __future__ import annotations

import allure
import pytest

from chaos.faults import Toxic
from chaos.history import History
from topology import evidence
from topology.citus import WORKERS, connect, timed
from topology.docker_env import ip_prefix
from topology.health import assert_healthy
from topology.stacks import port

from .conftest import PROXY_HOST, PROXY_PORT
from .scenario import MULTI_SHARD_SQL, ROUTER_SQL, summary

pytestmark = [pytest.mark.citus, pytest.mark.destructive]

NEAR, FAR = WORKERS
PROXY_IP_SUFFIX = ".30"  # compose/toxiproxy.yml


def sample(conn, keys: dict[str, list[int]], n: int, n_multi: int) -> dict[str, list]:
    out = {w: [timed(conn, ROUTER_SQL, (keys[w][i % len(keys[w])],)) for i in range(n)] for w in WORKERS}
    out["multi-shard"] = [timed(conn, MULTI_SHARD_SQL) for _ in range(n_multi)]
    return out


@pytest.mark.faults("Toxic@toxiproxy-api")
def test_latency_to_one_worker_shows_in_its_queries_only(citus, bounds, citus_stack, worker2_route):
    stacks = ["citus", "toxiproxy"]
    keys = citus.keys_by_worker(bounds.keys_per_worker)
    with allure.step("steady state: healthy; co-located join"):
        assert_healthy(citus_stack, stacks)
        join_before = citus.colocated_join()
    api = f"http://127.0.0.1:{port('DPG_PORT_TOXIPROXY')}"
    with citus.routed_through(FAR, PROXY_HOST, PROXY_PORT):
        with connect(statement_timeout_ms=bounds.client_timeout_ms) as conn:
            with allure.step(f"baseline through the route (no toxic), {bounds.latency_samples} samples each"):
                base = sample(conn, keys, bounds.latency_samples, bounds.multi_shard_samples)
                peers = citus.peers_of(FAR)
            with (
                allure.step(f"inject: latency {bounds.latency_ms} ms on coordinator <- {FAR}"),
                Toxic(
                    worker2_route,
                    "latency",
                    {"latency": bounds.latency_ms, "jitter": 0},
                    stream="downstream",
                    api=api,
                    history=History(),
                ),
            ):
                slow = sample(conn, keys, bounds.latency_samples, bounds.multi_shard_samples)
    report = {
        phase: {k: summary(v) for k, v in data.items()} for phase, data in (("baseline", base), ("latency", slow))
    }
    evidence.attach_json(
        "query latency",
        {**report, "latency_ms": bounds.latency_ms, "far_worker": FAR, "clients_seen_by_far_worker": peers},
    )
    for phase, rows in report.items():
        for what, s in rows.items():
            evidence.record_measurement(
                "citus_latency",
                phase=phase,
                query=what,
                toxic_ms=bounds.latency_ms,
                **{k: s[k] for k in ("n", "failed", "p50_ms", "p95_ms", "max_ms")},
            )
    with allure.step("verify: the coordinator reached the far worker through the proxy"):
        assert ip_prefix() + PROXY_IP_SUFFIX in peers, f"{FAR} saw clients {peers}, not the fault proxy"
    with allure.step("verify: no query failed"):
        failed = [a for data in (base, slow) for v in data.values() for a in v if not a.ok]
        assert not failed, f"{len(failed)} queries failed, first: {failed[0]}"
    with allure.step("verify: the delay shows where it is injected, and only there"):
        lat = report["latency"]
        assert lat[FAR]["p95_ms"] >= bounds.latency_ms, f"{FAR} router p95 {lat[FAR]} < toxic {bounds.latency_ms}"
        assert lat["multi-shard"]["p95_ms"] >= bounds.latency_ms, lat["multi-shard"]
        assert lat[NEAR]["p95_ms"] < bounds.latency_ms, f"{NEAR} router p95 {lat[NEAR]}: delay leaked"
        assert report["baseline"][FAR]["p95_ms"] < bounds.latency_ms, "the route alone is as slow as the toxic"
    with allure.step("verify: co-located join unchanged; health gate"):
        assert citus.colocated_join() == join_before
        assert_healthy(citus_stack, stacks)
