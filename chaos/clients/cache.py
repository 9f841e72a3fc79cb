"""Cache-aside for user rows: Redis in front of PostgreSQL, with cache keys versioned by the database.

Why versioned keys: a write made while Redis is unreachable can neither delete nor overwrite the cached
copy. With a plain `user:<id>` key the old row would be served again as soon as Redis is back. Here every
row has a `version` bumped by each write, the key is `<prefix>:<id>:v<version>`, and the version is read
from the database on every lookup (one primary-key probe of a bigint): after a write the old entry is never
asked for again and expires by TTL. The cached payload carries its id and version too, and an entry whose
payload does not match its key is refused (`stale_rejected`), so not even a misplaced entry can be served.

Redis trouble never reaches the caller: every Redis call has a short socket timeout and no retries, any
Redis error makes the read fall back to the database (`fallbacks`), and after an error Redis is skipped for
`breaker_s` seconds (`bypassed`) so that a black-holed Redis costs one timeout per breaker period, not one
per read. Database errors do reach the caller: the database is the source of truth.

`CacheProbe` runs a bounded reader loop through the cache recording every read (ok/fail, source, version,
latency); `stale_reads` is the checker: no read that began after a write was acknowledged may return an
older version of that row.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import psycopg

from topology.endpoints import close_quietly

#: the Redis errors the client swallows (redis-py's base class covers ConnectionError and TimeoutError)
try:
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover - redis is a pinned dependency
    RedisError = OSError  # type: ignore[misc,assignment]


@dataclass(frozen=True)
class User:
    id: int
    name: str
    version: int


class UserStore(Protocol):
    """The source of truth (PostgreSQL in the suites, a dict in the unit tests)."""

    def version(self, user_id: int) -> int | None: ...

    def load(self, user_id: int) -> User | None: ...

    def write(self, user_id: int, name: str) -> User: ...


class KeyValue(Protocol):
    """What the cache needs from a Redis client (redis.Redis fits; unit tests pass a fake)."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: str, ex: int | None = None) -> Any: ...


# ------------------------------------------------------------------------------------------- the cache


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    fallbacks: int = 0  # a Redis call failed (error or timeout): served from the database
    bypassed: int = 0  # Redis skipped while the breaker is open: served from the database
    stale_rejected: int = 0  # an entry whose payload did not match its versioned key
    last_error: str = ""

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)


class CacheAside:
    """Reads through Redis, writes to the database; Redis errors fall back to the database, never raise."""

    def __init__(
        self,
        store: UserStore,
        kv: KeyValue,
        *,
        prefix: str = "dpg:cache:user",
        ttl_s: int = 300,
        breaker_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.kv, self.prefix = store, kv, prefix
        self.ttl_s, self.breaker_s, self.clock = ttl_s, breaker_s, clock
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._open_until = 0.0

    def key(self, user_id: int, version: int) -> str:
        return f"{self.prefix}:{user_id}:v{version}"

    # -- Redis, guarded ------------------------------------------------------------------------------------
    _FAILED = object()

    def _redis(self, op: str, *args, **kwargs) -> Any:
        """Call Redis unless the breaker is open; any Redis error -> _FAILED (counted, breaker opened)."""
        with self._lock:
            if self.clock() < self._open_until:
                self.stats.bypassed += 1
                return self._FAILED
        try:
            return getattr(self.kv, op)(*args, **kwargs)
        except (RedisError, OSError) as exc:
            with self._lock:
                self.stats.fallbacks += 1
                self.stats.last_error = f"{op}: {type(exc).__name__}: {str(exc)[:120]}"
                self._open_until = self.clock() + self.breaker_s
            return self._FAILED

    def _count(self, what: str) -> None:
        with self._lock:
            setattr(self.stats, what, getattr(self.stats, what) + 1)

    # -- the API -------------------------------------------------------------------------------------------
    def get(self, user_id: int) -> tuple[User | None, str]:
        """The row and where it came from: "cache", "db" (miss) or "db-fallback" (Redis unavailable)."""
        version = self.store.version(user_id)
        if version is None:
            return None, "db"
        raw = self._redis("get", self.key(user_id, version))
        redis_ok = raw is not self._FAILED
        if redis_ok and raw is not None:
            cached = decode(raw)
            if cached is not None and cached.id == user_id and cached.version == version:
                self._count("hits")
                return cached, "cache"
            self._count("stale_rejected")
        user = self.store.load(user_id)
        if redis_ok:
            self._count("misses")
            if user is not None:
                self._redis("set", self.key(user.id, user.version), encode(user), ex=self.ttl_s)
        return user, ("db" if redis_ok else "db-fallback")

    def put(self, user_id: int, name: str) -> User:
        """Write to the database (bumps the version), then best-effort cache the new version."""
        user = self.store.write(user_id, name)
        self._redis("set", self.key(user.id, user.version), encode(user), ex=self.ttl_s)
        return user


def encode(user: User) -> str:
    return json.dumps(asdict(user), separators=(",", ":"))


def decode(raw: Any) -> User | None:
    try:
        data = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        return User(int(data["id"]), str(data["name"]), int(data["version"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def redis_client(host: str, port: int, *, timeout_s: float = 0.25):
    """redis-py client for the cache: short connect/read timeouts and NO retries (redis-py retries 3 times by
    default, which would triple the time a caller waits for a dead Redis)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(
        host=host,
        port=port,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


# ------------------------------------------------------------------------------------- the database side


class PostgresUsers:
    """`cache_demo.users(id, name, version)` through one endpoint (HAProxy in the suites), one connection,
    reconnecting after an error; thread-safe (one statement at a time)."""

    SCHEMA = (
        "CREATE SCHEMA IF NOT EXISTS cache_demo",
        "CREATE TABLE IF NOT EXISTS cache_demo.users (id int PRIMARY KEY, name text NOT NULL, "
        "version bigint NOT NULL DEFAULT 1)",
    )

    def __init__(self, conninfo: dict[str, str]) -> None:
        self.conninfo = conninfo
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(**self.conninfo, autocommit=True)
                cur = self._conn.execute(sql, params)
                return cur.fetchall() if cur.description else []
            except psycopg.Error:
                self.close_unlocked()
                raise

    def close_unlocked(self) -> None:
        close_quietly(self._conn)
        self._conn = None

    def close(self) -> None:
        with self._lock:
            self.close_unlocked()

    def create(self, n: int) -> None:
        """The table and users 1..n (name `user-<id>`, version 1), from scratch."""
        for stmt in self.SCHEMA:
            self._exec(stmt)
        self._exec("TRUNCATE cache_demo.users")
        self._exec("INSERT INTO cache_demo.users (id, name) SELECT i, 'user-' || i FROM generate_series(1, %s) i", (n,))

    def drop(self) -> None:
        self._exec("DROP SCHEMA IF EXISTS cache_demo CASCADE")

    def version(self, user_id: int) -> int | None:
        rows = self._exec("SELECT version FROM cache_demo.users WHERE id = %s", (user_id,))
        return int(rows[0][0]) if rows else None

    def load(self, user_id: int) -> User | None:
        rows = self._exec("SELECT id, name, version FROM cache_demo.users WHERE id = %s", (user_id,))
        return User(int(rows[0][0]), rows[0][1], int(rows[0][2])) if rows else None

    def write(self, user_id: int, name: str) -> User:
        rows = self._exec(
            "UPDATE cache_demo.users SET name = %s, version = version + 1 WHERE id = %s RETURNING id, name, version",
            (name, user_id),
        )
        if not rows:
            raise LookupError(f"no user {user_id}")
        return User(int(rows[0][0]), rows[0][1], int(rows[0][2]))


# -------------------------------------------------------------------------------- probe and checker


@dataclass(frozen=True)
class CacheOp:
    """One call through the cache as the caller saw it (monotonic start/end)."""

    kind: str  # read | write
    user_id: int
    start: float
    end: float
    outcome: str  # ok | fail (an exception reached the caller)
    source: str = ""  # cache | db | db-fallback (reads)
    version: int | None = None
    error: str | None = None

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000


@dataclass
class CacheLog:
    """Thread-safe, append-only list of CacheOps."""

    ops: list[CacheOp] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, op: CacheOp) -> None:
        with self._lock:
            self.ops.append(op)

    def snapshot(self, since: float = float("-inf"), until: float = float("inf")) -> list[CacheOp]:
        with self._lock:
            return [o for o in self.ops if since <= o.start and o.end <= until]


def timed_read(cache: CacheAside, user_id: int, log: CacheLog) -> CacheOp:
    start = time.monotonic()
    try:
        user, source = cache.get(user_id)
        op = CacheOp("read", user_id, start, time.monotonic(), "ok", source, user.version if user else None)
    except Exception as exc:
        op = CacheOp("read", user_id, start, time.monotonic(), "fail", error=f"{type(exc).__name__}: {exc}"[:200])
    log.add(op)
    return op


def timed_write(cache: CacheAside, user_id: int, name: str, log: CacheLog) -> CacheOp:
    start = time.monotonic()
    try:
        user = cache.put(user_id, name)
        op = CacheOp("write", user_id, start, time.monotonic(), "ok", "db", user.version)
    except Exception as exc:
        op = CacheOp("write", user_id, start, time.monotonic(), "fail", error=f"{type(exc).__name__}: {exc}"[:200])
    log.add(op)
    return op


class CacheProbe(threading.Thread):
    """Read users round-robin through the cache every `interval` s until stopped (or `max_seconds`)."""

    def __init__(
        self,
        cache: CacheAside,
        user_ids: Sequence[int],
        log: CacheLog,
        *,
        interval: float = 0.01,
        max_seconds: float = 300.0,
    ) -> None:
        super().__init__(name="cache-probe", daemon=True)
        self.cache, self.user_ids, self.log = cache, list(user_ids), log
        self.interval, self.max_seconds = interval, max_seconds
        self.stop_event = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        i = 0
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            timed_read(self.cache, self.user_ids[i % len(self.user_ids)], self.log)
            i += 1
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)


@dataclass(frozen=True)
class StaleRead:
    user_id: int
    read_start: float
    got_version: int | None
    acked_version: int
    acked_at: float


def stale_reads(ops: Iterable[CacheOp]) -> list[StaleRead]:
    """Reads that began after a write of the same row was acknowledged, yet returned an older version.

    A read concurrent with a write may return either version; one that starts after the acknowledgement must
    see it (or something newer). Failed reads are not stale reads (they are counted elsewhere)."""
    ops = list(ops)
    acked: dict[int, list[tuple[float, int]]] = {}
    for w in ops:
        if w.kind == "write" and w.outcome == "ok" and w.version is not None:
            acked.setdefault(w.user_id, []).append((w.end, w.version))
    found = []
    for r in ops:
        if r.kind != "read" or r.outcome != "ok":
            continue
        before = [(t, v) for t, v in acked.get(r.user_id, ()) if t <= r.start]
        if not before:
            continue
        at, newest = max(before, key=lambda tv: tv[1])
        if r.version is None or r.version < newest:
            found.append(StaleRead(r.user_id, r.start, r.version, newest, at))
    return found


def latency_summary(ops: Sequence[CacheOp]) -> dict[str, Any]:
    """Count, outcome and source breakdown and nearest-rank p50/p95/max of read latency (ms)."""
    ms = sorted(o.ms for o in ops)

    def pct(p: float) -> float | None:
        return round(ms[max(1, math.ceil(p / 100 * len(ms))) - 1], 2) if ms else None

    sources: dict[str, int] = {}
    for o in ops:
        sources[o.source or o.outcome] = sources.get(o.source or o.outcome, 0) + 1
    return {
        "n": len(ms),
        "failed": sum(o.outcome != "ok" for o in ops),
        "sources": sources,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "max_ms": round(ms[-1], 2) if ms else None,
    }
