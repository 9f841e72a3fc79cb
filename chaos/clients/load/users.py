"""Locust users speaking PostgreSQL through psycopg 3 (Locust's custom-client pattern: `events.request.fire`).

Locust runs every user in a gevent greenlet; psycopg 3 notices gevent's monkey-patching and waits on sockets
cooperatively, so one Locust process drives many connections. Each user keeps one connection through the
entry point named by DPG_LOAD_TARGET (see chaos/clients/load/targets.py) and reconnects after an error, as an
application would.

With DPG_LOAD_LOG=<path> every request is also appended to a CSV (wall start, ms, name, ok, error): the
chaos-under-load test draws its timeline from it (Locust's own CSVs only hold aggregates).
"""

from __future__ import annotations

import csv
import os
import random
import time

import psycopg
from locust import User, between, events, task

from chaos.clients.load import schema, targets
from topology.endpoints import close_quietly

REQUEST_TYPE = "pg"
#: per-statement bound, enforced by the server; connect_timeout bounds the connect (libpq minimum 2 s)
STATEMENT_TIMEOUT_MS = int(os.environ.get("DPG_LOAD_STATEMENT_TIMEOUT_MS", "5000"))


class RequestLog:
    """Append-only per-request CSV for one Locust process (greenlets share it; writes are whole lines)."""

    def __init__(self, path: str | None):
        self._fh = open(path, "a", newline="", buffering=1 << 16) if path else None  # noqa: SIM115 - closed in close()
        self._w = csv.writer(self._fh) if self._fh else None

    def add(self, wall: float, ms: float, name: str, error: BaseException | None) -> None:
        if self._w is not None:
            self._w.writerow(
                (
                    f"{wall:.6f}",
                    f"{ms:.3f}",
                    name,
                    0 if error else 1,
                    "" if error is None else f"{type(error).__name__}: {str(error).strip()[:120]}",
                )
            )

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


REQUEST_LOG = RequestLog(os.environ.get("DPG_LOAD_LOG"))


@events.quitting.add_listener
def _close_log(**_kwargs) -> None:
    REQUEST_LOG.close()


class PgClient:
    """One connection; `run()` times a statement and reports it to Locust (and the request log)."""

    def __init__(self, target: str, environment):
        self.target, self.environment = target, environment
        self.endpoint = targets.endpoint(target)
        self.conn: psycopg.Connection | None = None

    def _connect(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(
                **self.endpoint.conninfo(connect_timeout=2),
                autocommit=True,
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            )
        return self.conn

    def run(self, name: str, sql: str, params: tuple) -> None:
        wall, t0 = time.time(), time.perf_counter()
        error: BaseException | None = None
        try:
            cur = self._connect().execute(sql, params)
            if cur.description is not None:
                cur.fetchall()
        except Exception as exc:
            error = exc
            self.close()
        ms = (time.perf_counter() - t0) * 1000
        REQUEST_LOG.add(wall, ms, name, error)
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=name,
            response_time=ms,
            response_length=0,
            exception=error,
            context={"target": self.target},
        )

    def close(self) -> None:
        close_quietly(self.conn)
        self.conn = None


class PgUser(User):
    """Base: one PgClient through DPG_LOAD_TARGET (default haproxy). No think time: a closed-loop client."""

    abstract = True
    wait_time = between(0, 0)
    target_env = "DPG_LOAD_TARGET"
    default_target = "haproxy"

    def on_start(self) -> None:
        self.client = PgClient(os.environ.get(self.target_env, self.default_target), self.environment)

    def on_stop(self) -> None:
        self.client.close()

    def point_read(self) -> None:
        self.client.run("point_read", schema.POINT_READ, (random.randint(1, schema.KV_ROWS),))

    def write(self) -> None:
        self.client.run("write", schema.WRITE, (random.randint(1, schema.KV_ROWS), random.randint(0, 1 << 30)))


class PointReadUser(PgUser):
    @task
    def read(self) -> None:
        self.point_read()


class WriteUser(PgUser):
    @task
    def insert(self) -> None:
        self.write()


class MixUser(PgUser):
    """80 % point reads, 20 % writes (the same ratio as the pgbench mix)."""

    @task(8)
    def read(self) -> None:
        self.point_read()

    @task(2)
    def insert(self) -> None:
        self.write()


class VectorSearchUser(PgUser):
    """Top-10 cosine neighbours on the vector DB (it has no router or pooler in front)."""

    default_target = "vector"
    target_env = "DPG_LOAD_VECTOR_TARGET"
    rows = int(os.environ.get("DPG_LOAD_VECTOR_ROWS", "10000"))

    @task
    def search(self) -> None:
        self.client.run("vector_search", schema.VECTOR_SEARCH, (random.randint(1, self.rows),))
