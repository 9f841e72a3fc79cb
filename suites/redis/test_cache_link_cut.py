"""Cutting the link between the application's cache client and Redis, four ways, then healing it.

Properties (each cut): during the cut every read still succeeds, from the database, within the latency bound
of suites/redis/cache.yaml, and no error reaches the caller; rows written during the cut are never served in
their old version afterwards (each one checked, while the old entry demonstrably still sits in Redis); cache
hits resume after heal. Where Redis itself becomes unreachable (network cuts), redis_exporter reports
redis_up 0, Prometheus fires RedisDown, and both recover after heal; where only the client's route is cut
(fault proxy), Redis stays up and RedisDown must stay silent.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import allure
import pytest

from chaos.clients.cache import CacheLog, CacheProbe, latency_summary, stale_reads, timed_read, timed_write
from chaos.faults import Disconnected, Isolated, ProxyDisabled, Toxic
from chaos.history import History
from topology import evidence, prometheus
from topology.health import assert_healthy
from topology.names import SUBNET, container
from topology.stacks import port
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

from .conftest import PROXY_PORT

pytestmark = pytest.mark.destructive

REDIS = container("redis")
GATED = ["patroni", "redis", "toxiproxy", "monitoring"]


def redis_up() -> dict[str, float]:
    return prometheus.values("redis_up")


def redis_down_alert() -> list[dict]:
    return prometheus.firing("RedisDown")


def cut_and_verify(*, name: str, fault, cache, users, redis_direct, cfg, client, redis_goes_down: bool) -> None:
    """Steady state -> cut (reads + writes through the cache) -> heal -> verify (see the module docstring)."""
    ids = list(range(1, cfg.users + 1))
    written_ids = ids[: cfg.written]
    log = CacheLog()
    with allure.step("steady state: healthy, every row cached, Prometheus sees Redis up"):
        assert_healthy(client, GATED)
        for uid in ids:
            timed_read(cache, uid, log)
        for uid in ids:
            assert timed_read(cache, uid, log).source == "cache", f"user {uid} not served from the cache when warm"
        wait_for(
            lambda: redis_up() and all(v == 1 for v in redis_up().values()),
            within=TIMEOUTS.alert,
            what="Prometheus redis_up == 1 before the cut",
        )
        old_versions = {uid: users.version(uid) for uid in written_ids}

    probe = CacheProbe(cache, ids, log, interval=0.01, max_seconds=TIMEOUTS.alert * 3)
    history = History()
    stats_before = cache.stats.snapshot()
    prom_seen: dict[str, object] = {}
    probe.start()
    try:
        with allure.step(f"inject: {name}"), fault(history) as f:
            t_cut = time.monotonic()
            wait_for(
                lambda: cache.stats.fallbacks > stats_before["fallbacks"],
                within=TIMEOUTS.statement * 5,
                what="the cache client notices the cut",
                every=0.1,
            )
            writes = [timed_write(cache, uid, f"{name}-{uid}", log) for uid in written_ids]
            if redis_goes_down:
                prom_seen["redis_up"] = wait_for(
                    lambda: (v := redis_up()) and all(x == 0 for x in v.values()) and v,
                    within=TIMEOUTS.alert,
                    what="Prometheus redis_up == 0 during the cut",
                )
                prom_seen["RedisDown"] = wait_for(
                    redis_down_alert, within=TIMEOUTS.alert, what="alert RedisDown firing during the cut"
                )
            time.sleep(max(0.0, cfg.cut_s - (time.monotonic() - t_cut)))
            if not redis_goes_down:
                prom_seen["redis_up"] = redis_up()
                prom_seen["RedisDown"] = redis_down_alert()
            t_heal = time.monotonic()
        with allure.step("heal: cache hits resume"):
            hits = cache.stats.hits
            wait_for(
                lambda: cache.stats.hits > hits + 5,
                within=TIMEOUTS.statement * 5,
                what="cache hits resume after heal",
                every=0.1,
            )
    finally:
        probe.stop()

    with allure.step("verify: no error reached the caller, reads from the database, within the bound"):
        cut_reads = [o for o in log.snapshot(since=t_cut, until=t_heal) if o.kind == "read"]
        summary = latency_summary(cut_reads)
        evidence.attach_json("reads during the cut", summary)
        evidence.attach_json("cache stats", {"before": stats_before, "after": cache.stats.snapshot()})
        evidence.attach_json("prometheus during the cut", prom_seen)
        evidence.attach_json("fault events", [asdict(e) for e in f.events])
        evidence.attach_text(
            "cache ops (csv)",
            "kind,user_id,start,end,outcome,source,version,error\n"
            + "\n".join(
                f"{o.kind},{o.user_id},{o.start:.4f},{o.end:.4f},{o.outcome},{o.source},{o.version},{o.error or ''}"
                for o in log.snapshot()
            ),
        )
        evidence.record_measurement(
            "redis_cut",
            cut=name,
            cut_s=round(t_heal - t_cut, 2),
            **{k: summary[k] for k in ("n", "failed", "p50_ms", "p95_ms", "max_ms")},
            sources=summary["sources"],
            fallbacks=cache.stats.fallbacks - stats_before["fallbacks"],
            bypassed=cache.stats.bypassed - stats_before["bypassed"],
            bound_ms=cfg.max_read_ms_during_cut,
        )
        failed = [o for o in log.snapshot() if o.outcome != "ok"]
        assert not failed, f"{len(failed)} calls raised to the caller, first: {failed[0]}"
        assert summary["n"] >= 10, f"only {summary['n']} reads during the cut: the probe did not run"
        from_cache = [o for o in cut_reads if o.source == "cache"]
        assert not from_cache, f"{len(from_cache)} reads served from Redis during the cut: the cut did not cut"
        assert summary["max_ms"] <= cfg.max_read_ms_during_cut, (
            f"slowest read during the cut {summary['max_ms']} ms > {cfg.max_read_ms_during_cut} ms ({cfg.source})"
        )

    with allure.step("verify: every row written during the cut is served in its new version"):
        assert all(w.outcome == "ok" for w in writes)
        stale = stale_reads(log.snapshot())
        assert not stale, f"{len(stale)} stale reads, first: {stale[0]}"
        leftovers = 0
        for w in writes:
            got, _ = cache.get(w.user_id)
            truth = users.load(w.user_id)
            assert got == truth and got.version == w.version and got.name == f"{name}-{w.user_id}", (
                f"user {w.user_id}: cache gave {got}, database has {truth}, written {w.version}"
            )
            leftovers += redis_direct.get(cache.key(w.user_id, old_versions[w.user_id])) is not None
        # the old entries are still in Redis (a cache keyed by id alone would have served them)
        assert leftovers == len(writes), f"only {leftovers} of {len(writes)} old entries still cached"

    with allure.step("verify: Prometheus after heal"):
        if redis_goes_down:
            wait_for(
                lambda: (v := redis_up()) and all(x == 1 for x in v.values()),
                within=TIMEOUTS.alert,
                what="Prometheus redis_up back to 1 after heal",
            )
            wait_for(lambda: not redis_down_alert(), within=TIMEOUTS.alert, what="RedisDown resolved after heal")
        else:
            assert all(v == 1 for v in prom_seen["redis_up"].values()) and prom_seen["redis_up"], (
                f"redis_up {prom_seen['redis_up']} while only the client's route was cut"
            )
            assert not prom_seen["RedisDown"], "RedisDown fired though Redis itself was up"
    with allure.step("final health gate"):
        assert_healthy(client, GATED)


@pytest.mark.faults("Disconnected@redis")
def test_disconnected_redis_falls_back_and_serves_no_stale_rows(
    cache_stacks, make_cache, users, redis_direct, cache_config
):
    """docker network disconnect of Redis: its published port refuses at once; the exporter cannot resolve it."""
    cut_and_verify(
        name="disconnect",
        fault=lambda h: Disconnected(REDIS, history=h),
        cache=make_cache(port("DPG_PORT_REDIS")),
        users=users,
        redis_direct=redis_direct,
        cfg=cache_config,
        client=cache_stacks,
        redis_goes_down=True,
    )


@pytest.mark.faults("Isolated@redis")
def test_isolated_redis_falls_back_and_serves_no_stale_rows(
    cache_stacks, make_cache, users, redis_direct, cache_config
):
    """iptables DROP of the whole subnet (peers and the host's gateway) in Redis' netns: a black hole, so the
    client's calls time out (socket timeout + breaker) instead of being refused."""
    cut_and_verify(
        name="isolate",
        fault=lambda h: Isolated(REDIS, from_=[SUBNET], history=h),
        cache=make_cache(port("DPG_PORT_REDIS")),
        users=users,
        redis_direct=redis_direct,
        cfg=cache_config,
        client=cache_stacks,
        redis_goes_down=True,
    )


@pytest.mark.faults("Toxic@toxiproxy-api")
def test_toxic_timeout_on_the_client_route_falls_back(
    cache_stacks, redis_proxy, make_cache, users, redis_direct, cache_config
):
    """Fault proxy `timeout` toxic (timeout=0: data held until the toxic goes) between client and Redis."""
    cut_and_verify(
        name="toxic-timeout",
        fault=lambda h: Toxic(redis_proxy, "timeout", {"timeout": 0}, stream="upstream", history=h),
        cache=make_cache(PROXY_PORT),
        users=users,
        redis_direct=redis_direct,
        cfg=cache_config,
        client=cache_stacks,
        redis_goes_down=False,
    )


@pytest.mark.faults("ProxyDisabled@toxiproxy-api")
def test_disabled_client_route_falls_back(cache_stacks, redis_proxy, make_cache, users, redis_direct, cache_config):
    """Fault proxy route disabled: connections dropped, new ones refused."""
    cut_and_verify(
        name="proxy-down",
        fault=lambda h: ProxyDisabled(redis_proxy, history=h),
        cache=make_cache(PROXY_PORT),
        users=users,
        redis_direct=redis_direct,
        cfg=cache_config,
        client=cache_stacks,
        redis_goes_down=False,
    )
