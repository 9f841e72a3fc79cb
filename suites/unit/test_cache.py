"""The cache-aside client (chaos/clients/cache.py) without Docker: a dict for the database, a fake Redis that can be
cut.

The scenario that matters: a row is cached, Redis becomes unreachable, the row is written, Redis comes back.
A naive cache keyed by id alone serves the old row afterwards (shown here, and caught by the checker); the
versioned cache must not.
"""

from __future__ import annotations

import contextlib

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chaos.clients.cache import (
    CacheAside,
    CacheLog,
    CacheOp,
    User,
    decode,
    encode,
    latency_summary,
    stale_reads,
    timed_read,
    timed_write,
)

pytestmark = pytest.mark.unit


class FakeDB:
    def __init__(self, n: int = 3):
        self.rows = {i: User(i, f"user-{i}", 1) for i in range(1, n + 1)}
        self.reads = 0

    def version(self, user_id):
        row = self.rows.get(user_id)
        return row.version if row else None

    def load(self, user_id):
        self.reads += 1
        return self.rows.get(user_id)

    def write(self, user_id, name):
        old = self.rows[user_id]
        self.rows[user_id] = User(user_id, name, old.version + 1)
        return self.rows[user_id]


class FakeRedis:
    """A dict; `cut` makes every call raise like redis-py does on a dead link (refused or timed out)."""

    def __init__(self):
        self.data: dict[str, str] = {}
        self.cut: type[Exception] | None = None
        self.calls = 0

    def _check(self):
        self.calls += 1
        if self.cut is not None:
            raise self.cut("link cut")

    def get(self, key):
        self._check()
        return self.data.get(key)

    def set(self, key, value, ex=None):
        self._check()
        self.data[key] = value
        return True


class NaiveCache:
    """What the versioned keys protect against: cache-aside keyed by id only, invalidated on write."""

    def __init__(self, db, kv):
        self.db, self.kv = db, kv

    def get(self, user_id):
        try:
            raw = self.kv.get(f"naive:{user_id}")
            if raw is not None:
                return decode(raw), "cache"
        except RedisConnectionError:
            return self.db.load(user_id), "db-fallback"
        user = self.db.load(user_id)
        with contextlib.suppress(RedisConnectionError):
            self.kv.set(f"naive:{user_id}", encode(user))
        return user, "db"

    def put(self, user_id, name):
        user = self.db.write(user_id, name)
        with contextlib.suppress(RedisConnectionError):  # the invalidation is lost with the link
            self.kv.data.pop(f"naive:{user_id}", None) if self.kv.cut is None else self.kv._check()
        return user


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def world():
    db, kv, clock = FakeDB(), FakeRedis(), Clock()
    return db, kv, clock, CacheAside(db, kv, ttl_s=60, breaker_s=1.0, clock=clock)


def test_second_read_is_a_hit_under_a_versioned_key(world):
    db, kv, _, cache = world
    assert cache.get(1) == (User(1, "user-1", 1), "db")
    assert cache.get(1) == (User(1, "user-1", 1), "cache")
    assert list(kv.data) == ["dpg:cache:user:1:v1"]
    assert (cache.stats.hits, cache.stats.misses, db.reads) == (1, 1, 1)


@pytest.mark.parametrize("error", [RedisConnectionError, RedisTimeoutError, ConnectionResetError])
def test_redis_errors_never_reach_the_caller(world, error):
    _db, kv, clock, cache = world
    kv.cut = error
    assert cache.get(2) == (User(2, "user-2", 1), "db-fallback")
    assert cache.put(2, "renamed").version == 2
    assert cache.stats.fallbacks == 1 and cache.stats.bypassed == 1  # breaker: the put skipped Redis
    clock.now += 1.5  # breaker closed again, still cut
    assert cache.get(2) == (User(2, "renamed", 2), "db-fallback")
    assert cache.stats.fallbacks == 2 and "link cut" in cache.stats.last_error


def test_breaker_skips_redis_while_open_and_retries_after(world):
    _, kv, clock, cache = world
    kv.cut = RedisTimeoutError
    cache.get(1)
    calls = kv.calls
    for _ in range(5):
        cache.get(1)
    assert kv.calls == calls and cache.stats.bypassed == 5  # no timeout paid while open
    kv.cut = None
    clock.now += 1.01
    assert cache.get(1)[1] == "db" and cache.get(1)[1] == "cache"


def test_write_during_cut_leaves_no_stale_row_after_heal(world):
    _db, kv, clock, cache = world
    cache.get(1)
    cache.get(1)  # cached at v1
    kv.cut = RedisConnectionError
    log = CacheLog()
    assert timed_write(cache, 1, "written-during-cut", log).version == 2
    kv.cut = None
    clock.now += 2
    assert "dpg:cache:user:1:v1" in kv.data  # the old entry is still in Redis...
    op = timed_read(cache, 1, log)
    assert (op.version, op.source) == (2, "db")  # ...and never served
    assert timed_read(cache, 1, log).source == "cache"  # hits resume, on the new version
    assert stale_reads(log.ops) == []


def test_naive_cache_serves_the_old_row_and_the_checker_catches_it():
    """The same scenario without versions: proves the scenario produces a stale read, and the check sees it."""
    db, kv = FakeDB(), FakeRedis()
    naive, log = NaiveCache(db, kv), CacheLog()
    naive.get(1)
    kv.cut = RedisConnectionError
    timed_write(naive, 1, "written-during-cut", log)
    kv.cut = None
    op = timed_read(naive, 1, log)
    assert (op.version, op.source) == (1, "cache")  # stale
    found = stale_reads(log.ops)
    assert len(found) == 1 and found[0].got_version == 1 and found[0].acked_version == 2


def test_an_entry_that_does_not_match_its_key_is_refused(world):
    _db, kv, _, cache = world
    kv.data[cache.key(3, 1)] = encode(User(3, "forged", 7))  # wrong version inside the payload
    kv.data[cache.key(2, 1)] = "not json"
    assert cache.get(3) == (User(3, "user-3", 1), "db")
    assert cache.get(2) == (User(2, "user-2", 1), "db")
    assert cache.stats.stale_rejected == 2


def test_unknown_user_and_database_errors():
    db, kv = FakeDB(), FakeRedis()
    cache = CacheAside(db, kv)
    assert cache.get(99) == (None, "db")

    class DownDB(FakeDB):
        def version(self, user_id):
            raise OSError("database down")

    log = CacheLog()
    op = timed_read(CacheAside(DownDB(), kv), 1, log)  # the database is the truth: its errors do surface
    assert op.outcome == "fail" and "database down" in op.error


def test_stale_reads_allows_concurrent_reads_and_ignores_failures():
    ops = [
        CacheOp("write", 1, 10.0, 11.0, "ok", "db", 2),
        CacheOp("read", 1, 10.5, 10.6, "ok", "cache", 1),  # began before the ack: may see v1
        CacheOp("read", 1, 11.5, 11.6, "fail", error="x"),  # failed: not a stale read
        CacheOp("read", 1, 11.5, 11.6, "ok", "db", 2),
        CacheOp("read", 2, 11.5, 11.6, "ok", "cache", 1),
    ]  # another row, never written
    assert stale_reads(ops) == []
    assert len(stale_reads([*ops, CacheOp("read", 1, 12.0, 12.1, "ok", "cache", 1)])) == 1


def test_latency_summary_percentiles_and_sources():
    ops = [CacheOp("read", 1, 0.0, i / 1000, "ok", "cache" if i % 2 else "db-fallback", 1) for i in range(1, 21)]
    s = latency_summary(ops)
    assert s["n"] == 20 and s["failed"] == 0 and s["p50_ms"] == 10 and s["p95_ms"] == 19 and s["max_ms"] == 20
    assert s["sources"] == {"cache": 10, "db-fallback": 10}
