"""Workload clients (Jepsen's `client`): writers that insert sequenced rows through one entry point.

Each attempt becomes one `Op`: ok (acknowledged, with the server, timeline and the server's own commit
timestamp), fail (definitely not applied: connect refused, read-only server, server-side cancel) or info
(unknown: the connection died or our client-side deadline fired after the statement was sent).

A frozen server never answers and cannot enforce statement_timeout, so the client-side deadline shuts the
socket down from a timer (the blocked wait then fails at once). Writers pinned to one node use a long
deadline on purpose: that is how a deposed leader's late acknowledgement after unfreeze becomes visible.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import errors as pgerrors

from chaos.history import History, Op
from topology.endpoints import Endpoint, close_quietly
from topology.errors import positive_number_from_env
from topology.names import probe_schema

log = logging.getLogger("dpg.probes")

#: the probe tables' schema: `probe` in the embedded topology, a schema of ours in a target (topology.probe_schema)
SCHEMA = probe_schema()
#: Which server ran a statement: the node's own name where it has one (this project's image sets `dpg.node_name`
#: to its Patroni name), else the address it was reached at. On several hosts a published port is reached through
#: each host's docker_gwbridge, whose addresses repeat from host to host: an address there names no node.
SERVER_ID = (
    "coalesce(nullif(current_setting('dpg.node_name', true), ''), "
    "host(inet_server_addr()) || ':' || inet_server_port())"
)
INSERT = (
    f"INSERT INTO {SCHEMA}.writes (value, probe, run_id, server) VALUES (%s, %s, %s, {SERVER_ID}) "
    "RETURNING server, timeline, xmin::text"
)
COMMIT_TS = f"SELECT extract(epoch FROM pg_xact_commit_timestamp(%s::xid)), {SERVER_ID}"

#: Errors that prove the write was not applied (the server refused it before doing anything).
DEFINITE_FAILURES = (
    pgerrors.ReadOnlySqlTransaction,
    pgerrors.QueryCanceled,
    pgerrors.AdminShutdown,
    pgerrors.CannotConnectNow,
    pgerrors.InsufficientPrivilege,
)


@dataclass(frozen=True)
class ProbeSettings:
    interval: float = 0.02  # one write every 20 ms at most
    connect_timeout: int = 2  # libpq's minimum: it rounds lower values up to 2 s
    deadline: float = 2.0  # client-side bound on one statement (info when it fires)
    # After a failed attempt the next one waits twice as long as the last, up to retry_cap: a client backs off
    # while the server is away. Retrying every 20 ms, the four writers (libpq multi-host logging in to every
    # replica on each try) took enough of the 2 cores to slow the promotion they measured (docs/measurements.md).
    # The cost: a gap reads up to retry_cap longer than the cluster's own.
    retry_cap: float = field(default_factory=lambda: retry_cap_from_env())

    def pause_after(self, failures: int) -> float:
        """Seconds from one attempt's start to the next after `failures` consecutive failed attempts."""
        if failures == 0:
            return self.interval
        return min(self.interval * 2 ** (failures - 1), max(self.retry_cap, self.interval))


def retry_cap_from_env() -> float:
    """DPG_PROBE_RETRY_CAP_MS (default 100) in seconds; 20 reproduces a herd retrying every 20 ms."""
    return positive_number_from_env("DPG_PROBE_RETRY_CAP_MS", "100", what="a number of milliseconds") / 1000


@contextmanager
def bounded_threads(
    threads: list[threading.Thread], stop: threading.Event, *, max_seconds: float, join_timeout: float, what: str
) -> Iterator[None]:
    """Run client threads for a block, bounded in time whatever happens: a watchdog sets `stop` after `max_seconds`;
    at the end `stop` is set and each thread joined for at most `join_timeout` (a straggler is logged)."""
    watchdog = threading.Timer(max_seconds, stop.set)
    watchdog.daemon = True
    for t in threads:
        t.start()
    watchdog.start()
    try:
        yield
    finally:
        stop.set()
        watchdog.cancel()
        for t in threads:
            t.join(timeout=join_timeout)
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            log.warning("%s threads still alive after stop: %s", what, alive)


class Sequence:
    """Unique values across all writers of a run."""

    def __init__(self) -> None:
        self._it = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            return next(self._it)


def describe(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:200]


class _DeadlineReaper(threading.Thread):
    """One thread that enforces every probe's statement deadline.

    A `threading.Timer` per statement meant a new thread for each of the ~400 statements a second the probes
    send, CPU taken from the 2-core machine whose failover they measure. Deadlines are kept in a heap; one that
    is still armed when it comes due shuts its connection's socket down (the blocked wait then fails at once)."""

    def __init__(self) -> None:
        super().__init__(name="probe-deadlines", daemon=True)
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _SocketDeadline]] = []
        self._ids = itertools.count()

    def arm(self, deadline: _SocketDeadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.due, next(self._ids), deadline))
            self._cond.notify()

    def disarm(self, deadline: _SocketDeadline) -> None:
        with self._cond:  # after this returns the deadline can no longer fire
            deadline.armed = False

    def run(self) -> None:
        while True:
            with self._cond:
                while self._heap and not self._heap[0][2].armed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                due, _, deadline = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                deadline.armed = False
                deadline.fired = True
            deadline.shut_socket()


_REAPER = _DeadlineReaper()
_REAPER.start()


class _SocketDeadline:
    """Shut the connection's socket down if a statement outlives its deadline (frozen peer)."""

    def __init__(self, conn: psycopg.Connection, seconds: float):
        self.conn, self.due = conn, time.monotonic() + seconds
        self.armed, self.fired = True, False

    def shut_socket(self) -> None:
        try:
            fd = self.conn.pgconn.socket
            s = socket.socket(fileno=socket.dup(fd))
            try:
                s.shutdown(socket.SHUT_RDWR)
            finally:
                s.close()
        except Exception:
            pass

    def __enter__(self):
        _REAPER.arm(self)
        return self

    def __exit__(self, *exc):
        _REAPER.disarm(self)
        return False


class Writer(threading.Thread):
    """Insert one row per `interval` through `endpoint` until stopped; every attempt lands in `history`."""

    def __init__(
        self,
        endpoint: Endpoint,
        history: History,
        sequence: Sequence,
        run_id: str,
        *,
        settings: ProbeSettings,
        stop: threading.Event,
        node_of: dict[str, str] | None = None,
        name: str | None = None,
    ):
        super().__init__(name=f"writer-{name or endpoint.name}", daemon=True)
        self.endpoint, self.history, self.sequence, self.run_id = endpoint, history, sequence, run_id
        self.settings, self.stop_event, self.node_of = settings, stop, node_of or {}
        self.probe = name or endpoint.name
        self.conn: psycopg.Connection | None = None

    def run(self) -> None:
        failures = 0
        try:
            while not self.stop_event.is_set():
                started = time.monotonic()
                failures = 0 if self.write_once() == "ok" else failures + 1
                pause = self.settings.pause_after(failures) - (time.monotonic() - started)
                if pause > 0:
                    self.stop_event.wait(pause)
        finally:
            self._drop()

    def _drop(self) -> None:
        close_quietly(self.conn)
        self.conn = None

    def _record(
        self, value: int, start: float, wall: float, outcome: str, *, end: float | None = None, **fields
    ) -> None:
        self.history.add(
            Op(
                probe=self.probe,
                kind="write",
                value=value,
                start=start,
                end=end if end is not None else time.monotonic(),
                wall=wall,
                outcome=outcome,
                **fields,
            )
        )

    def write_once(self) -> str:
        """One attempt, recorded in the history; returns its outcome (ok / fail / info)."""
        value = self.sequence.next()
        start, wall = time.monotonic(), time.time()
        if self.conn is None or self.conn.closed:
            try:
                self.conn = psycopg.connect(
                    **self.endpoint.conninfo(connect_timeout=self.settings.connect_timeout), autocommit=True
                )
            except Exception as exc:
                self._record(value, start, wall, "fail", error=describe(exc))
                self.conn = None
                return "fail"
        try:
            with _SocketDeadline(self.conn, self.settings.deadline) as deadline:
                server, timeline, xid = self.conn.execute(INSERT, (value, self.probe, self.run_id)).fetchone()
        except DEFINITE_FAILURES as exc:
            self._record(value, start, wall, "fail", error=describe(exc))
            self._drop()
            return "fail"
        except Exception as exc:
            why = "client deadline" if deadline.fired else describe(exc)
            self._record(value, start, wall, "info", error=why)
            self._drop()
            return "info"
        acked = time.monotonic()  # the acknowledgement time; the commit-time lookup below is extra
        commit_ts = self._commit_ts(xid, server)
        self._record(
            value,
            start,
            wall,
            "ok",
            end=acked,
            server=server,
            node=self.node_of.get(server.split(":")[0]),
            timeline=timeline,
            commit_ts=commit_ts,
        )
        return "ok"

    def _commit_ts(self, xid: str, server: str) -> float | None:
        """The server's own commit time (track_commit_timestamp): when a late commit really happened.

        Only trusted when the lookup ran on the server that committed (a pooler may switch servers)."""
        try:
            with _SocketDeadline(self.conn, self.settings.deadline):
                ts, answered_by = self.conn.execute(COMMIT_TS, (xid,)).fetchone()
            return float(ts) if ts is not None and answered_by == server else None
        except Exception:
            self._drop()
            return None


class Reader(threading.Thread):
    """Read through the RO path: records which server answered and whether it was in recovery."""

    def __init__(
        self,
        endpoint: Endpoint,
        history: History,
        *,
        settings: ProbeSettings,
        stop: threading.Event,
        node_of: dict[str, str] | None = None,
    ):
        super().__init__(name=f"reader-{endpoint.name}", daemon=True)
        self.endpoint, self.history, self.settings, self.stop_event = endpoint, history, settings, stop
        self.node_of = node_of or {}

    def run(self) -> None:
        conn = None
        while not self.stop_event.is_set():
            start, wall = time.monotonic(), time.time()
            try:
                if conn is None:
                    conn = psycopg.connect(
                        **self.endpoint.conninfo(connect_timeout=self.settings.connect_timeout), autocommit=True
                    )
                with _SocketDeadline(conn, self.settings.deadline):
                    server, recovery = conn.execute(f"SELECT {SERVER_ID}, pg_is_in_recovery()").fetchone()
                outcome = "ok" if recovery else "fail"
                self.history.add(
                    Op(
                        self.endpoint.name,
                        "read",
                        None,
                        start,
                        time.monotonic(),
                        wall,
                        outcome,
                        error=None if recovery else "answered by a primary",
                        server=server,
                        node=self.node_of.get(server.split(":")[0]),
                    )
                )
            except Exception as exc:
                self.history.add(
                    Op(self.endpoint.name, "read", None, start, time.monotonic(), wall, "fail", error=describe(exc))
                )
                close_quietly(conn)
                conn = None
            self.stop_event.wait(self.settings.interval * 5)
        if conn is not None:
            conn.close()


class Workload:
    """Writers (and optional readers) through several entry points sharing one history and sequence."""

    def __init__(
        self,
        writes: list[Endpoint],
        *,
        reads: list[Endpoint] = (),
        pinned: dict[str, Endpoint] | None = None,
        settings: ProbeSettings | None = None,
        pinned_deadline: float = 60.0,
        node_of: dict[str, str] | None = None,
        max_seconds: float = 600.0,
    ):
        settings = settings or ProbeSettings()
        self.run_id = uuid.uuid4().hex[:12]
        self.history = History()
        self.sequence = Sequence()
        self.stop = threading.Event()
        self.max_seconds = max_seconds
        pinned_settings = dataclasses.replace(settings, deadline=pinned_deadline)
        self.threads: list[threading.Thread] = [
            Writer(ep, self.history, self.sequence, self.run_id, settings=settings, stop=self.stop, node_of=node_of)
            for ep in writes
        ]
        self.threads += [
            Writer(
                ep,
                self.history,
                self.sequence,
                self.run_id,
                settings=pinned_settings,
                stop=self.stop,
                node_of=node_of,
                name=name,
            )
            for name, ep in (pinned or {}).items()
        ]
        self.threads += [Reader(ep, self.history, settings=settings, stop=self.stop, node_of=node_of) for ep in reads]

    @contextmanager
    def running(self) -> Iterator[History]:
        with bounded_threads(self.threads, self.stop, max_seconds=self.max_seconds, join_timeout=70, what="probe"):
            yield self.history

    def wait_acks(self, probe: str, count: int, within: float = 10.0) -> bool:
        """Block until `probe` has `count` more acknowledged writes (steady state reached / writes resumed)."""
        base = len(self.history.ops(probe=probe, kind="write", outcome="ok"))
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if len(self.history.ops(probe=probe, kind="write", outcome="ok")) >= base + count:
                return True
            time.sleep(0.05)
        return False


def final_read(endpoint: Endpoint, run_id: str) -> dict[int, int]:
    """value -> number of rows, read after heal from the current primary (Jepsen's final read)."""
    with psycopg.connect(**endpoint.conninfo(connect_timeout=5), autocommit=True) as conn:
        rows = conn.execute(
            f"SELECT value, count(*) FROM {SCHEMA}.writes WHERE run_id = %s GROUP BY value", (run_id,)
        ).fetchall()
    return {int(v): int(n) for v, n in rows}
