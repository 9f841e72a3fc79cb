"""A worker goes away (docker stop, SIGKILL, freeze, network cut) and comes back.

Properties, worker-2 down: router queries (users x events of one user) on keys placed on worker-1 keep
working and return what they returned before; reference tables stay readable through the coordinator and
worker-1; queries that need worker-2 (a multi-shard count, a router query on a worker-2 key) fail with a clear
error within citus.node_connection_timeout + margin (config: compose/citus.yml, suites/citus/citus.yaml), never
hang. After heal: per-table row counts and fingerprints, the co-located join, 16/16 placements and reference
reads through every node equal what they were before; the health gate is green.

The network cut goes through the fault proxy (the kernel has no netem and the upstream Citus image has no
iptables): the coordinator reaches worker-2 through a pg_dist_poolinfo route toxiproxy:25008 ->
citus-worker-2:5432, and a `timeout` toxic (timeout=0) turns that route into a black hole.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict

import allure
import pytest

from chaos.faults import Killed, Paused, Stopped, Toxic
from chaos.history import History
from topology import evidence
from topology.citus import COORDINATOR, WORKERS, timed_fresh
from topology.health import assert_healthy
from topology.names import container
from topology.stacks import port
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

from .conftest import PROXY_HOST, PROXY_PORT
from .scenario import CLEAR_ERROR, MULTI_SHARD_SQL, describe, multi_shard, router_results, snapshot_diff, summary

pytestmark = [pytest.mark.citus, pytest.mark.destructive]

HEALTHY, DOWN = WORKERS


@contextmanager
def worker_fault(kind: str, citus, history: History, route: str | None):
    target = container(DOWN)
    if kind == "stop":
        with Stopped(target, history=history) as f:
            yield f
    elif kind == "kill":
        with Killed(target, history=history) as f:
            yield f
    elif kind == "pause":
        with Paused(target, history=history) as f:
            yield f
    elif kind == "cut":
        api = f"http://127.0.0.1:{port('DPG_PORT_TOXIPROXY')}"
        with (
            citus.routed_through(DOWN, PROXY_HOST, PROXY_PORT),
            Toxic(route, "timeout", {"timeout": 0}, stream="downstream", api=api, history=history) as f,
        ):
            yield f
    else:
        raise ValueError(kind)


@pytest.fixture
def route_if_needed(request):
    """The fault-proxy route, only for the network cut (the other kinds need no toxiproxy stack)."""
    if request.node.callspec.params["kind"] == "cut":
        return request.getfixturevalue("worker2_route")
    return None


@pytest.mark.faults("Stopped@citus-worker-2", "Killed@citus-worker-2", "Paused@citus-worker-2", "Toxic@toxiproxy-api")
@pytest.mark.parametrize("kind", ["stop", "kill", "pause", "cut"])
def test_worker_down_healthy_shards_serve_and_the_rest_fails_fast(kind, citus, bounds, citus_stack, route_if_needed):
    stacks = ["citus"] + (["toxiproxy"] if kind == "cut" else [])
    keys = citus.keys_by_worker(bounds.keys_per_worker)
    with allure.step("steady state: healthy; snapshot; each key's router result"):
        assert_healthy(citus_stack, stacks)
        before = citus.snapshot()
        expected = {
            k: a.rows
            for k, a in router_results(
                keys[HEALTHY] + keys[DOWN], statement_timeout_ms=bounds.client_timeout_ms
            ).items()
        }
        assert all(expected.values()), "a router query returned nothing before the fault"
    history = History()
    with allure.step(f"inject: worker {DOWN} {kind}"), worker_fault(kind, citus, history, route_if_needed) as f:
        t_fault = time.monotonic()
        healthy = router_results(keys[HEALTHY], statement_timeout_ms=bounds.client_timeout_ms)
        down_key = timed_fresh(
            COORDINATOR,
            "SELECT count(*) FROM distributed.events WHERE user_id = %s",
            (keys[DOWN][0],),
            what=f"router key {keys[DOWN][0]} on {DOWN}",
            statement_timeout_ms=bounds.client_timeout_ms,
        )
        multi = multi_shard(statement_timeout_ms=bounds.client_timeout_ms)
        reference = {
            node: timed_fresh(
                node,
                "SELECT (SELECT count(*) FROM distributed.countries), (SELECT count(*) FROM distributed.regions)",
                what=f"reference tables via {node}",
                statement_timeout_ms=bounds.client_timeout_ms,
            )
            for node in (COORDINATOR, HEALTHY)
        }
        during_s = time.monotonic() - t_fault
    with allure.step("heal: queries reach every shard again"):
        t_heal = time.monotonic()
        wait_for(
            lambda: timed_fresh(COORDINATOR, MULTI_SHARD_SQL, statement_timeout_ms=5000).ok,
            within=TIMEOUTS.citus_recover,
            what=f"multi-shard query works after {kind} of {DOWN} healed",
        )
        recovered_s = time.monotonic() - t_heal

    healthy_summary = summary(list(healthy.values()))
    evidence.attach_json(
        "during the fault",
        {
            "healthy_router": healthy_summary,
            "failed_router": [asdict(a) for a in healthy.values() if not a.ok],
            "router_on_down_worker": asdict(down_key),
            "multi_shard": asdict(multi),
            "reference": {n: asdict(a) for n, a in reference.items()},
            "bound_ms": bounds.fail_within_ms,
            "fault_events": [asdict(e) for e in f.events],
            "seconds_in_fault": round(during_s, 2),
        },
    )
    evidence.record_measurement(
        "citus_worker_down",
        fault=kind,
        worker=DOWN,
        multi_shard_error_ms=round(multi.ms, 1),
        multi_shard_error=multi.error,
        router_down_error_ms=round(down_key.ms, 1),
        healthy_router=healthy_summary,
        node_connection_timeout_ms=bounds.node_connection_timeout_ms,
        recovered_s=round(recovered_s, 2),
    )

    with allure.step(f"verify: router queries on {HEALTHY}'s keys kept working, same results"):
        failed = [a for a in healthy.values() if not a.ok]
        assert not failed, f"{len(failed)} router queries on {HEALTHY} keys failed, first: {failed[0]}"
        changed = [k for k, a in healthy.items() if a.rows != expected[k]]
        assert not changed, f"router results changed during the fault for keys {changed}"
        # a router query that waited on the missing worker would take the whole connection timeout
        assert healthy_summary["max_ms"] < bounds.node_connection_timeout_ms, healthy_summary
    with allure.step("verify: reference tables readable through the coordinator and the healthy worker"):
        want = (before["fingerprints"]["distributed.countries"][0], before["fingerprints"]["distributed.regions"][0])
        for node, a in reference.items():
            assert a.ok and a.rows == (want,), f"reference read via {node}: {a}"
    with allure.step(f"verify: what needs {DOWN} fails clearly within {bounds.fail_within_ms:.0f} ms"):
        for a in (multi, down_key):
            assert not a.ok, f"{a.what} succeeded while {DOWN} was {kind}: {a}"
            assert a.ms <= bounds.fail_within_ms, (
                f"{a.what} took {a.ms:.0f} ms to fail, bound {bounds.fail_within_ms:.0f} ms "
                f"(citus.node_connection_timeout {bounds.node_connection_timeout_ms} + margin {bounds.error_margin_ms})"
            )
            assert CLEAR_ERROR.search(a.error), f"{a.what}: unclear error {a.error!r}"
    with allure.step("verify after heal: data, co-located join, placements, reference reads as before"):
        after = citus.snapshot()
        diff = snapshot_diff(before, after)
        evidence.attach_json("snapshot after heal", {"diff": diff, "cluster": describe(citus)})
        assert not diff, f"changed by the fault: {diff}"
    with allure.step("final health gate"):
        assert_healthy(citus_stack, stacks, within=TIMEOUTS.citus_recover)
