"""The list-append client (Jepsen's `append` workload, as its Stolon test runs it on PostgreSQL).

A few tables hold one row per key with a list of integers (`k bigint PRIMARY KEY, v int[]`). A transaction is 1-4
micro-ops, each `append k v` (`INSERT ... ON CONFLICT (k) DO UPDATE SET v = t.v || EXCLUDED.v`; values unique per
key) or `read k` (`SELECT v`). N processes per entry point (threads, one psycopg 3 connection each at a time) run
them at a target rate; read-only transactions go through the RO paths and read the keys the RW sessions append to.

Every transaction is recorded twice, in Elle's shape (chaos.checkers.elle: `python -m chaos txn-check`):

* `invoke` just before BEGIN is sent (reads null),
* its completion: `ok` (COMMIT answered COMMIT), `fail` (definitely not committed: refused before BEGIN, any error
  before COMMIT was sent, serialization failure 40001 / deadlock 40P01 / integrity class 23 in reply to COMMIT, or
  COMMIT answered ROLLBACK) or `info` (unknown: the connection died, or our deadline fired, once COMMIT was sent;
  any other error in reply to COMMIT, e.g. a shutdown while a synchronous commit waited). After an `info` the
  process takes a new id (Jepsen: a crashed process never comes back).

Each op also carries its path, the isolation level, the server (`dpg.node_name`, else `inet_server_addr()`),
`pg_is_in_recovery()`, the timeline, the LSN (current on a primary, replayed on a standby), monotonic ns (`time`)
and wall-clock seconds (`wall`). Faults mark the same record (`mark()`, duck-typed like chaos.history.History), as
`{"process": "nemesis", "f": action, ...}` lines the checker shows next to the anomalies.

Bounded: `max_txns` transactions, `max_seconds` of running, `statement_timeout` per transaction (SET LOCAL, which
works behind a transaction-mode pooler), libpq's connect_timeout, a client-side deadline per statement (a frozen
server cannot enforce statement_timeout). Gentle: a target rate per path, shared by its few processes, and a
back-off after failures (the cluster under test has 2 cores).

The seeded defect `lie_commit_ok` records every failed transaction as ok with what it read: the checker must flag
it (tests show it does).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from chaos.clients.probes import SCHEMA, SERVER_ID, _SocketDeadline, bounded_threads, describe
from topology.endpoints import Endpoint, close_quietly

log = logging.getLogger("dpg.listappend")

ISOLATION_SQL = {
    "serializable": "SERIALIZABLE",
    "repeatable-read": "REPEATABLE READ",
    "read-committed": "READ COMMITTED",
}
#: A standby refuses SERIALIZABLE ("cannot use serializable mode in a hot standby"): read-only transactions on the
#: RO paths run at REPEATABLE READ then (the strongest a standby offers; documented in docs/consistency.md).
RO_ISOLATION = {
    "serializable": "repeatable-read",
    "repeatable-read": "repeatable-read",
    "read-committed": "read-committed",
}
#: errors in reply to COMMIT that prove it did not commit
COMMIT_FAILED_STATES = ("40001", "40P01")
COMMIT_FAILED_CLASSES = ("23",)


@dataclass(frozen=True)
class AppendSettings:
    isolation: str = "serializable"
    processes: int = 2  # per entry point
    rate: float = 8.0  # target transactions per second per entry point (all its processes together)
    tables: int = 3
    active_keys: int = 6  # keys in play at once; a key retires after max_writes appends
    max_writes: int = 24
    min_len: int = 1
    max_len: int = 4
    read_fraction: float = 0.5
    connect_timeout: int = 2
    statement_timeout_ms: int = 2000
    deadline: float = 4.0  # client-side bound on one statement
    retry_cap: float = 1.0  # back-off after consecutive failures, up to this many seconds
    max_txns: int = 20_000
    max_seconds: float = 600.0
    lie_commit_ok: bool = False  # SEEDED DEFECT: a failed transaction is recorded as ok
    # for the seeded defect: every Nth transaction with an append ends in ROLLBACK instead of COMMIT (a definite
    # fail), so the lie has something to lie about even when no 40001 happens (CI, 2026-12-03: none in 15 s)
    rollback_every: int = 0

    def __post_init__(self) -> None:
        if self.isolation not in ISOLATION_SQL:
            raise ValueError(f"isolation {self.isolation!r}: one of {', '.join(ISOLATION_SQL)}")
        if not (1 <= self.min_len <= self.max_len) or self.processes < 1 or self.rate <= 0 or self.tables < 1:
            raise ValueError("need 1 <= min_len <= max_len, processes >= 1, rate > 0, tables >= 1")

    def interval(self) -> float:
        """Seconds between one process's transaction starts (the path's rate shared by its processes)."""
        return self.processes / self.rate

    def pause_after(self, failures: int) -> float:
        return self.interval() if failures == 0 else min(self.interval() * 2 ** (failures - 1), self.retry_cap)


# ------------------------------------------------------------------------------------------------ SQL


def table(schema: str, key: int, tables: int) -> str:
    return f"{schema}.txn_{key % tables}"


def ddl(schema: str, tables: int, ro_user: str) -> list[str]:
    out = []
    for i in range(tables):
        t = f"{schema}.txn_{i}"
        out += [f"CREATE TABLE IF NOT EXISTS {t} (k bigint PRIMARY KEY, v int[] NOT NULL)",
                f'GRANT SELECT ON {t} TO "{ro_user}"']  # fmt: skip
    return out


def append_sql(t: str) -> str:
    return (
        f"INSERT INTO {t} AS t (k, v) VALUES (%s, ARRAY[%s]::int[]) ON CONFLICT (k) DO UPDATE SET v = t.v || EXCLUDED.v"
    )


def read_sql(t: str) -> str:
    return f"SELECT v FROM {t} WHERE k = %s"


def begin_sql(isolation: str, read_only: bool) -> str:
    return f"BEGIN ISOLATION LEVEL {ISOLATION_SQL[isolation]}" + (" READ ONLY" if read_only else "")


#: first statement of every transaction: its statement_timeout (local to it) and where it runs
META_SQL = (
    "SELECT set_config('statement_timeout', %s, true), "
    f"{SERVER_ID}, host(inet_server_addr()), pg_is_in_recovery(), "
    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text ELSE pg_current_wal_lsn()::text END, "
    "CASE WHEN pg_is_in_recovery() THEN (SELECT received_tli FROM pg_stat_wal_receiver) "
    "ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END"
)


# ------------------------------------------------------------------------------------------------ record


class Recorder:
    """The run's history in Elle's shape: index order = the order ops were recorded, `time` = monotonic ns since the
    run started; thread-safe, append-only. Faults mark it too (`mark`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ops: list[dict[str, Any]] = []
        self.t0 = time.monotonic_ns()

    def _add(self, op: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            op = {"index": len(self._ops), "time": time.monotonic_ns() - self.t0, **op, "wall": round(time.time(), 6)}
            self._ops.append(op)
            return op

    def invoke(self, process: int, value: list[list[Any]], **meta: Any) -> dict[str, Any]:
        return self._add({"process": process, "type": "invoke", "f": "txn", "value": value, **meta})

    def complete(self, process: int, outcome: str, value: list[list[Any]], **meta: Any) -> dict[str, Any]:
        return self._add({"process": process, "type": outcome, "f": "txn", "value": value, **meta})

    def mark(self, action: str, target: str, detail: str = "") -> dict[str, Any]:
        """A fault mark (chaos.faults call `history.mark(action, target, detail)`)."""
        return self._add({"process": "nemesis", "type": "info", "f": action, "value": target, "detail": detail})

    def ops(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._ops)

    def to_jsonl(self) -> str:
        return "".join(json.dumps(op, default=str) + "\n" for op in self.ops())

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_jsonl())
        return p


class Tee:
    """Marks to several histories at once (the failover experiment's and the list-append record)."""

    def __init__(self, *histories: Any) -> None:
        self.histories = histories

    def mark(self, action: str, target: str, detail: str = "") -> None:
        for h in self.histories:
            h.mark(action, target, detail)


# ------------------------------------------------------------------------------------------------ generator


class Keys:
    """The keys in play and the next value of each (unique per key, shared by every process); a key retires after
    `max_writes` appends and a fresh one takes its place, so lists stay short. Key choice is exponential: a few hot
    keys (contention), as in Jepsen's append workload."""

    def __init__(self, rng: random.Random, active: int, max_writes: int) -> None:
        self.rng, self.max_writes = rng, max_writes
        self._lock = threading.Lock()
        self._next_key = itertools.count()
        self.next_value: dict[int, int] = {}
        self.active = [self._fresh() for _ in range(active)]

    def _fresh(self) -> int:
        k = next(self._next_key)
        self.next_value[k] = 1
        return k

    def _slot(self) -> int:
        return min(int(self.rng.expovariate(0.7)), len(self.active) - 1)

    def append(self) -> tuple[int, int]:
        with self._lock:
            i = self._slot()
            k = self.active[i]
            v = self.next_value[k]
            self.next_value[k] = v + 1
            if v >= self.max_writes:
                self.active[i] = self._fresh()
            return k, v

    def read(self) -> int:
        with self._lock:
            return self.active[self._slot()]

    def all(self) -> list[int]:
        with self._lock:
            return sorted(self.next_value)

    def txn(self, *, read_only: bool, min_len: int, max_len: int, read_fraction: float) -> list[list[Any]]:
        with self._lock:
            n = self.rng.randint(min_len, max_len)
            kinds = ["r" if read_only or self.rng.random() < read_fraction else "append" for _ in range(n)]
        out: list[list[Any]] = []
        for f in kinds:
            if f == "r":
                out.append(["r", self.read(), None])
            else:
                k, v = self.append()
                out.append(["append", k, v])
        return out


class Budget:
    """At most `total` transactions across all processes."""

    def __init__(self, total: int) -> None:
        self.left, self._lock = total, threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


# ------------------------------------------------------------------------------------------------ one transaction


class _TxnError(Exception):
    """How a transaction ended when it did not commit for sure: the metadata read so far, the phase it failed in
    (begin / meta / statements / commit), the micro-ops done and the server's SQLSTATE, if any."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.meta: dict[str, Any] = {}
        self.phase = ""
        self.done: list[list[Any]] = []
        self.sqlstate: str | None = None


class TxnFailed(_TxnError):
    """Definitely not committed."""


class TxnUnknown(_TxnError):
    """Maybe committed."""


def commit_failed(exc: BaseException) -> bool:
    """An error in reply to COMMIT that proves the transaction did not commit."""
    state = getattr(exc, "sqlstate", None) or ""
    return state in COMMIT_FAILED_STATES or state[:2] in COMMIT_FAILED_CLASSES


Connect = Callable[[Endpoint, "AppendSettings"], Any]
Deadline = Callable[[Any, float], Any]


def connect_psycopg(endpoint: Endpoint, settings: AppendSettings) -> psycopg.Connection:
    # no server-side prepared statements: a transaction-mode pooler may hand the next statement to another server
    return psycopg.connect(
        **endpoint.conninfo(connect_timeout=settings.connect_timeout), autocommit=True, prepare_threshold=None
    )


def run_txn(
    conn: Any,
    mops: list[list[Any]],
    *,
    isolation: str,
    read_only: bool,
    sql_key: Callable[[int], int],
    schema: str,
    settings: AppendSettings,
    deadline: Deadline = _SocketDeadline,
    rollback: bool = False,
) -> tuple[list[list[Any]], dict[str, Any]]:
    """Run one transaction on an open connection; returns (completed value, metadata) or raises TxnFailed /
    TxnUnknown with the reason. The connection is unusable after either (the caller drops it). `rollback`: end it
    with ROLLBACK instead of COMMIT (a definite fail, phase "commit")."""
    meta: dict[str, Any] = {}
    done: list[list[Any]] = []
    phase = "begin"
    try:
        with deadline(conn, settings.deadline):
            conn.execute(begin_sql(isolation, read_only))
        phase = "meta"
        with deadline(conn, settings.deadline):
            row = conn.execute(META_SQL, (str(settings.statement_timeout_ms),)).fetchone()
        meta = {"server": row[1], "addr": row[2], "in_recovery": row[3], "lsn": row[4], "timeline": row[5]}
        phase = "statements"
        for f, k, v in mops:
            t = table(schema, k, settings.tables)
            with deadline(conn, settings.deadline):
                if f == "append":
                    conn.execute(append_sql(t), (sql_key(k), v))
                    done.append([f, k, v])
                else:
                    got = conn.execute(read_sql(t), (sql_key(k),)).fetchone()
                    done.append(["r", k, list(got[0]) if got else []])
        phase = "commit"
        if rollback:
            with deadline(conn, settings.deadline):
                conn.execute("ROLLBACK")
            raise TxnFailed("rolled back by the client (rollback_every)")
        with deadline(conn, settings.deadline) as d:
            cur = conn.execute("COMMIT")
        if getattr(d, "fired", False):
            raise TxnUnknown("client deadline around COMMIT")
        if (getattr(cur, "statusmessage", "COMMIT") or "").upper() != "COMMIT":
            raise TxnFailed(f"COMMIT answered {cur.statusmessage}")
        return done, meta
    except (TxnFailed, TxnUnknown) as exc:
        exc.meta, exc.phase, exc.done = meta, phase, done
        raise
    except Exception as exc:
        why = describe(exc)
        if phase != "commit" or commit_failed(exc):
            err: TxnFailed | TxnUnknown = TxnFailed(f"{phase}: {why}")
        else:
            err = TxnUnknown(f"{phase}: {why}")
        err.meta, err.phase, err.done = meta, phase, done
        err.sqlstate = getattr(exc, "sqlstate", None)
        raise err from exc


# ------------------------------------------------------------------------------------------------ processes


class Session(threading.Thread):
    """One process slot of an entry point: transactions one after another at the path's pace."""

    def __init__(self, work: ListAppend, endpoint: Endpoint, read_only: bool, slot: int) -> None:
        super().__init__(name=f"listappend-{endpoint.name}-{slot}", daemon=True)
        self.work, self.endpoint, self.read_only = work, endpoint, read_only
        self.conn: Any = None
        s = work.settings
        self.isolation = RO_ISOLATION[s.isolation] if read_only else s.isolation
        self.rng = random.Random(work.seed * 1000 + slot)

    def _drop(self) -> None:
        close_quietly(self.conn)
        self.conn = None

    def run(self) -> None:
        w, s = self.work, self.work.settings
        process = w.new_process()
        failures = 0
        # stagger the first transactions of the processes over one interval
        w.stop.wait(self.rng.uniform(0, s.interval()))
        try:
            while not w.stop.is_set() and w.budget.take():
                started = time.monotonic()
                outcome = self.one(process)
                if outcome == "info":
                    process = w.new_process()
                failures = 0 if outcome == "ok" else failures + 1
                pause = s.pause_after(failures) - (time.monotonic() - started)
                if pause > 0:
                    w.stop.wait(pause)
        finally:
            self._drop()

    def one(self, process: int) -> str:
        w, s = self.work, self.work.settings
        mops = w.keys.txn(read_only=self.read_only, min_len=s.min_len, max_len=s.max_len,
                          read_fraction=1.0 if self.read_only else s.read_fraction)  # fmt: skip
        return w.execute(process, mops, self, read_only=self.read_only, isolation=self.isolation)


class ListAppend:
    """The workload: sessions through the RW paths (appends and reads) and the RO paths (reads only), one record."""

    def __init__(
        self,
        rw: list[Endpoint],
        ro: list[Endpoint] = (),
        settings: AppendSettings | None = None,
        *,
        seed: int = 0,
        schema: str = SCHEMA,
        connect: Connect = connect_psycopg,
        deadline: Deadline = _SocketDeadline,
        node_of: dict[str, str] | None = None,
        key_base: int | None = None,
    ) -> None:
        self.settings = settings or AppendSettings()
        self.rw, self.ro = list(rw), list(ro)
        self.seed, self.schema, self.connect, self.deadline = seed, schema, connect, deadline
        self.node_of = node_of or {}
        self.recorder = Recorder()
        self.keys = Keys(random.Random(seed), self.settings.active_keys, self.settings.max_writes)
        self.budget = Budget(self.settings.max_txns)
        self.stop = threading.Event()
        self._pids = itertools.count()
        self._pid_lock = threading.Lock()
        self._writes = itertools.count(1)  # transactions with an append, for rollback_every
        # keys of this run in SQL: a fresh range per run, so runs never share a row
        self.key_base = (
            key_base if key_base is not None else (int(time.time()) * 1000 + random.randrange(1000)) * 100_000
        )
        self.sessions = [
            Session(self, ep, ro_path, slot)
            for ro_path, eps in ((False, self.rw), (True, self.ro))
            for ep in eps
            for slot in range(self.settings.processes)
        ]
        for i, sess in enumerate(self.sessions):  # distinct seeds per session across paths
            sess.rng = random.Random(seed * 1000 + i)

    def sql_key(self, k: int) -> int:
        return self.key_base + k

    def new_process(self) -> int:
        with self._pid_lock:
            return next(self._pids)

    def setup(self, endpoint: Endpoint, ro_user: str) -> None:
        """Create the tables (idempotent) through a RW endpoint."""
        conn = self.connect(endpoint, self.settings)
        try:
            for stmt in ddl(self.schema, self.settings.tables, ro_user):
                conn.execute(stmt)
        finally:
            close_quietly(conn)

    def execute(self, process: int, mops: list[list[Any]], holder: Any, *, read_only: bool, isolation: str,
                path: str | None = None) -> str:  # fmt: skip
        """Invoke, run and complete one transaction for `holder` (anything with .endpoint and .conn)."""
        s = self.settings
        ep = holder.endpoint
        base = {"path": path or ep.name, "isolation": isolation, "ro": read_only}
        invocation = [[f, k, None] if f == "r" else [f, k, v] for f, k, v in mops]
        self.recorder.invoke(process, invocation, **base)
        if holder.conn is None or getattr(holder.conn, "closed", False):
            try:
                holder.conn = self.connect(ep, s)
            except Exception as exc:
                return self._complete(process, "fail", invocation, base, {}, f"connect: {describe(exc)}")
        rollback = False
        if s.rollback_every and any(f == "append" for f, _, _ in mops):
            with self._pid_lock:
                rollback = next(self._writes) % s.rollback_every == 0
        try:
            done, meta = run_txn(holder.conn, mops, isolation=isolation, read_only=read_only, sql_key=self.sql_key,
                                 schema=self.schema, settings=s, deadline=self.deadline,
                                 rollback=rollback)  # fmt: skip
        except TxnFailed as exc:
            self._rollback(holder)
            if s.lie_commit_ok and exc.phase in ("statements", "commit"):
                # SEEDED DEFECT: the failed transaction is reported committed, with what it read (a read it never
                # reached as empty)
                done = exc.done + [[f, k, []] if f == "r" else [f, k, v] for f, k, v in mops[len(exc.done) :]]
                return self._complete(process, "ok", done, base, exc.meta, f"LIE (was: {exc})", exc.sqlstate)
            return self._complete(process, "fail", invocation, base, exc.meta, str(exc), exc.sqlstate)
        except TxnUnknown as exc:
            close_quietly(holder.conn)
            holder.conn = None
            return self._complete(process, "info", invocation, base, exc.meta, str(exc), exc.sqlstate)
        return self._complete(process, "ok", done, base, meta, None)

    def _rollback(self, holder: Any) -> None:
        """After a failure: end the aborted transaction (a pooler's server must not stay in it), else drop."""
        conn = holder.conn
        if conn is None:
            return
        try:
            with self.deadline(conn, 1.0):
                conn.execute("ROLLBACK")
        except Exception:
            close_quietly(conn)
            holder.conn = None

    def _complete(self, process: int, outcome: str, value: list[list[Any]], base: dict[str, Any],
                  meta: dict[str, Any], error: str | None, sqlstate: str | None = None) -> str:  # fmt: skip
        server = meta.get("server")
        extra = {
            "server": server,
            "node": self.node_of.get(meta.get("addr") or "", server),
            "in_recovery": meta.get("in_recovery"),
            "timeline": meta.get("timeline"),
            "lsn": meta.get("lsn"),
        }
        extra = {k: v for k, v in extra.items() if v is not None}
        if error:
            extra["error"] = error[:200]
        if sqlstate:
            extra["sqlstate"] = sqlstate
        self.recorder.complete(process, outcome, value, **base, **extra)
        return outcome

    @contextmanager
    def running(self) -> Iterator[Recorder]:
        join_timeout = self.settings.deadline * 6 + 5
        with bounded_threads(
            self.sessions, self.stop, max_seconds=self.settings.max_seconds, join_timeout=join_timeout,
            what="list-append session",
        ):  # fmt: skip
            yield self.recorder

    def final_reads(self, endpoint: Endpoint, *, per_txn: int = 16, within: float = 60.0) -> int:
        """Jepsen's final reads: every key of the run read through `endpoint` after the faults healed, retried (a new
        process each time) until each batch is ok or `within` seconds passed; returns the keys read ok."""
        keys = self.keys.all()
        holder = _Holder(endpoint)
        deadline = time.monotonic() + within
        done = 0
        iso = self.settings.isolation
        for i in range(0, len(keys), per_txn):
            batch = [["r", k, None] for k in keys[i : i + per_txn]]
            while time.monotonic() < deadline:
                process = self.new_process()
                outcome = self.execute(process, batch, holder, read_only=False, isolation=iso,
                                       path=f"final:{endpoint.name}")  # fmt: skip
                if outcome == "ok":
                    done += len(batch)
                    break
                time.sleep(0.5)
        close_quietly(holder.conn)
        return done

    def summary(self) -> dict[str, Any]:
        """Completions per path and outcome, and the commonest errors."""
        counts: dict[str, Counter] = {}
        errors: Counter = Counter()
        for op in self.recorder.ops():
            if op.get("f") != "txn" or op["type"] == "invoke":
                continue
            counts.setdefault(op["path"], Counter())[op["type"]] += 1
            if op.get("error"):
                errors[op.get("sqlstate") or op["error"].split(":")[0]] += 1
        return {
            "paths": {p: {o: c.get(o, 0) for o in ("ok", "fail", "info")} for p, c in sorted(counts.items())},
            "errors": dict(errors.most_common(8)),
            "isolation": self.settings.isolation,
            "processes_per_path": self.settings.processes,
            "rate_per_path": self.settings.rate,
            "keys": len(self.keys.all()),
            "lie_commit_ok": self.settings.lie_commit_ok,
        }


@dataclass
class _Holder:
    endpoint: Endpoint
    conn: Any = None


@contextlib.contextmanager
def no_deadline(conn: Any, seconds: float) -> Iterator[Any]:
    """A deadline that never fires (unit tests' fake connections have no socket)."""
    yield type("D", (), {"fired": False})()
