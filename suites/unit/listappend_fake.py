"""A fake PostgreSQL for the list-append client: enough of psycopg's connection to run the client's SQL, with known
guarantees and seeded faults, so the client's recording and classification are tested without a database.

`FakeDB` is strictly serializable (optimistic: a transaction's reads and appends are validated and applied at COMMIT,
under one lock, at one instant between its invocation and its completion). Faults, each with its probability:
`conflict` (40001 in reply to COMMIT, nothing applied), `lost_before` (the connection dies before COMMIT is sent),
`lost_at_commit` (it dies in reply to COMMIT, applied or not: half each), `refuse` (connect refused).
A `replica` view answers reads from the store as it was `lag` commits ago (a stale standby)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pgerrors


@dataclass
class FakeDB:
    seed: int = 0
    conflict: float = 0.0
    lost_before: float = 0.0
    lost_at_commit: float = 0.0
    refuse: float = 0.0
    store: dict[int, list[int]] = field(default_factory=dict)
    versions: dict[int, int] = field(default_factory=dict)
    log: list[dict[int, list[int]]] = field(default_factory=list)  # per commit: key -> its value after
    statements: list[str] = field(default_factory=list)
    lag: dict[str, int] = field(default_factory=dict)  # endpoint name -> appends its replica is behind

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.rng = random.Random(self.seed)

    def chance(self, p: float) -> bool:
        with self.lock:
            return self.rng.random() < p

    def connect(self, endpoint: Any, settings: Any) -> FakeConn:
        if self.chance(self.refuse):
            raise psycopg.OperationalError("connection refused (fake)")
        return FakeConn(self, replica_lag=self.lag.get(endpoint.name, 0))

    def snapshot_ago(self, lag: int) -> dict[int, list[int]]:
        """The store as it was `lag` commits ago (caller holds the lock)."""
        if lag <= 0:
            return {k: list(v) for k, v in self.store.items()}
        out: dict[int, list[int]] = {}
        for commit in self.log[: max(0, len(self.log) - lag)]:
            out.update(commit)
        return out


class FakeCursor:
    def __init__(self, row: Any = None, status: str = "") -> None:
        self.row, self.statusmessage = row, status

    def fetchone(self) -> Any:
        return self.row


class FakeConn:
    def __init__(self, db: FakeDB, replica_lag: int = 0) -> None:
        self.db, self.replica_lag = db, replica_lag
        self.closed = False
        self.txn: dict[str, Any] | None = None

    def close(self) -> None:
        self.closed = True

    def _die(self) -> None:
        self.closed = True
        raise psycopg.OperationalError("server closed the connection unexpectedly (fake)")

    def execute(self, sql: str, params: tuple = ()) -> FakeCursor:
        db = self.db
        if self.closed:
            raise psycopg.OperationalError("the connection is closed")
        db.statements.append(sql.split()[0])
        if sql.startswith("BEGIN"):
            self.txn = {"reads": {}, "appends": [], "snap": None}
            return FakeCursor(status="BEGIN")
        if sql.startswith("ROLLBACK"):
            self.txn = None
            return FakeCursor(status="ROLLBACK")
        assert self.txn is not None, f"{sql!r} outside a transaction"
        if sql.startswith("SELECT set_config"):
            name = "replica" if self.replica_lag else "primary"
            return FakeCursor((params[0], name, "10.0.0.1", bool(self.replica_lag), "0/1", 1))
        if sql.startswith("INSERT"):
            k, v = params
            self.txn["appends"].append((k, v))
            return FakeCursor(status="INSERT 0 1")
        if sql.startswith("SELECT v FROM"):
            (k,) = params
            with db.lock:
                if self.replica_lag:
                    if self.txn["snap"] is None:  # repeatable read on the standby: one snapshot per transaction
                        self.txn["snap"] = db.snapshot_ago(self.replica_lag)
                    base = list(self.txn["snap"].get(k, []))
                else:
                    base = list(db.store.get(k, []))
                    self.txn["reads"].setdefault(k, db.versions.get(k, 0))
            mine = [v for kk, v in self.txn["appends"] if kk == k]
            value = base + mine
            return FakeCursor((value,) if value else None)
        if sql.startswith("COMMIT"):
            txn, self.txn = self.txn, None
            if db.chance(db.lost_before):  # the connection died before COMMIT reached the server
                self._die()
            with db.lock:
                stale = any(db.versions.get(k, 0) != ver for k, ver in txn["reads"].items())
                if stale or db.rng.random() < db.conflict:
                    raise pgerrors.SerializationFailure("could not serialize access (fake)")
                apply = not (db.rng.random() < db.lost_at_commit)
                if apply and txn["appends"]:
                    for k, v in txn["appends"]:
                        db.store.setdefault(k, []).append(v)
                        db.versions[k] = db.versions.get(k, 0) + 1
                    db.log.append({k: list(db.store[k]) for k, _ in txn["appends"]})
                lost = not apply or db.rng.random() < db.lost_at_commit
            if lost:
                self._die()
            return FakeCursor(status="COMMIT")
        raise AssertionError(f"unexpected SQL {sql!r}")
