"""Many clients at once: hold N sessions open, or run one statement from N sessions concurrently.

For pool-limit questions ("what does client 56 get?"): each attempt records its outcome and its own latency,
so a refusal that is quick, a queue that drains, and a hang are told apart."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg

from topology.endpoints import Endpoint


@dataclass(frozen=True)
class Attempt:
    index: int
    ok: bool
    seconds: float
    error: str = ""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@contextlib.contextmanager
def held_sessions(
    endpoint: Endpoint, count: int, *, connect_timeout: int = 5
) -> Iterator[tuple[list[psycopg.Connection], list[Attempt]]]:
    """Open `count` sessions one after another (each runs SELECT 1); yields (open sessions, attempts).

    A refused attempt does not stop the others. Every session is closed on exit."""
    conns: list[psycopg.Connection] = []
    attempts: list[Attempt] = []
    try:
        for i in range(count):
            start = time.monotonic()
            try:
                conn = psycopg.connect(**endpoint.conninfo(connect_timeout=connect_timeout), autocommit=True)
                conn.execute("SELECT 1")
                conns.append(conn)
                attempts.append(Attempt(i, True, time.monotonic() - start))
            except psycopg.Error as exc:
                attempts.append(Attempt(i, False, time.monotonic() - start, _first_line(exc)))
        yield conns, attempts
    finally:
        for c in conns:
            with contextlib.suppress(Exception):
                c.close()


def concurrent_statements(
    endpoint: Endpoint, count: int, sql: str, *, connect_timeout: int = 5, deadline: float = 60.0
) -> list[Attempt]:
    """Run `sql` from `count` fresh sessions at the same time (one thread each); latency includes connect.

    No session settings are changed: behind a transaction-mode pooler a SET would leak to other clients."""

    def one(i: int) -> Attempt:
        start = time.monotonic()
        try:
            with psycopg.connect(**endpoint.conninfo(connect_timeout=connect_timeout), autocommit=True) as conn:
                conn.execute(sql)
            return Attempt(i, True, time.monotonic() - start)
        except psycopg.Error as exc:
            return Attempt(i, False, time.monotonic() - start, _first_line(exc))

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count), timeout=deadline + connect_timeout + 5))
