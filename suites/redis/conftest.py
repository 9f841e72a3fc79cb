"""Fixtures of the Redis suite: the stacks, the demo table, a fault-proxy route to Redis, cache clients."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from chaos.clients.cache import CacheAside, PostgresUsers, redis_client
from topology import endpoints
from topology.errors import TopologyError
from topology.proxy_routes import proxy_route
from topology.stacks import port

CONFIG = Path(__file__).with_name("cache.yaml")
#: the fault proxy's route to Redis: listens on the last of the published proxy ports, dials redis:6379
PROXY_NAME = "dpg-redis-cache"
PROXY_PORT = 25009


@dataclass(frozen=True)
class CacheConfig:
    socket_timeout_s: float
    breaker_s: float
    users: int
    written: int
    cut_s: float
    max_read_ms_during_cut: float
    source: str


@pytest.fixture(scope="session")
def cache_config() -> CacheConfig:
    """suites/redis/cache.yaml; DPG_CACHE_MAX_READ_MS overrides the latency bound."""
    try:
        raw = yaml.safe_load(CONFIG.read_text())
        cfg = CacheConfig(
            **{k: float(raw[k]) for k in ("socket_timeout_s", "breaker_s", "cut_s", "max_read_ms_during_cut")},
            users=int(raw["users"]),
            written=int(raw["written"]),
            source=CONFIG.name,
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise TopologyError(f"cannot read {CONFIG}: {exc!r}") from None
    if "DPG_CACHE_MAX_READ_MS" in os.environ:
        cfg = CacheConfig(
            **{
                **cfg.__dict__,
                "max_read_ms_during_cut": float(os.environ["DPG_CACHE_MAX_READ_MS"]),
                "source": "env DPG_CACHE_MAX_READ_MS",
            }
        )
    if not 0 < cfg.written <= cfg.users:
        raise TopologyError(f"{CONFIG.name}: need 0 < written <= users")
    return cfg


@pytest.fixture(scope="session")
def cache_stacks(write_paths_stacks, redis_stack, toxiproxy_stack, monitoring_stack):
    """Patroni (the database), Redis, the fault proxy, Prometheus. Traefik and PgBouncer come along because
    the monitoring gate wants every scrape target up, Traefik's included."""
    return monitoring_stack


@pytest.fixture
def users(cache_stacks, cache_config):
    """cache_demo.users 1..n through HAProxy, created for one test and dropped after it."""
    store = PostgresUsers(endpoints.haproxy().conninfo(connect_timeout=2))
    store.create(cache_config.users)
    yield store
    try:
        store.drop()
    finally:
        store.close()


@pytest.fixture(scope="module")
def redis_proxy(toxiproxy_stack):
    """A fault-proxy route 127.0.0.1:25009 -> redis:6379 (Toxiproxy API), removed at the end of the module."""
    with proxy_route(PROXY_NAME, PROXY_PORT, "redis:6379") as name:
        yield name


@pytest.fixture
def make_cache(users, cache_config):
    """CacheAside over the demo table and Redis at (host, port); a fresh key prefix per test."""
    prefix = f"dpg:cache:test:{uuid.uuid4().hex[:8]}"

    def make(redis_port: int) -> CacheAside:
        kv = redis_client("127.0.0.1", redis_port, timeout_s=cache_config.socket_timeout_s)
        return CacheAside(users, kv, prefix=prefix, ttl_s=600, breaker_s=cache_config.breaker_s)

    return make


@pytest.fixture
def redis_direct(cache_stacks, cache_config):
    """A client to Redis itself (published port), to look at what the cache left there."""
    return redis_client("127.0.0.1", port("DPG_PORT_REDIS"), timeout_s=2.0)
