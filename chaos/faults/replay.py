"""Pause WAL replay on one Patroni replica: it keeps receiving WAL but stops applying it, so replay lag grows
(the replica-lag alert's fault). Heal resumes replay; the replica catches up on its own.

Patroni resumes a paused replay by itself on its next HA loop (`handle_parameter_change`, PostgreSQL >= 14;
measured: within 3 s) unless the cluster is in maintenance mode, so inject it inside `MaintenanceMode()`."""

from __future__ import annotations

import psycopg
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from topology import endpoints

from .base import Fault, FaultError


class ReplayPaused(Fault):
    """`pg_wal_replay_pause()` on a replica (superuser, its published port); heal `pg_wal_replay_resume()`."""

    def __init__(self, node: str, *, history=None) -> None:
        super().__init__(history=history)
        self.node = node
        self._touched = False

    def describe(self) -> str:
        return f"ReplayPaused({self.node})"

    def targets(self) -> str:
        return self.node

    def undo_record(self) -> dict:
        return {"node": self.node}

    def _conn(self) -> psycopg.Connection:
        return psycopg.connect(**endpoints.node(self.node, superuser=True).conninfo(connect_timeout=3), autocommit=True)

    def inject(self) -> None:
        with self._conn() as conn:
            if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                raise FaultError(f"{self.node} is not a replica: WAL replay cannot be paused there")
            self._touched = True
            conn.execute("SELECT pg_wal_replay_pause()")

    def heal(self) -> None:
        """Resume replay if it is paused (idempotent); retried while the node is briefly unreachable."""
        if not self._touched:
            return

        def resume() -> None:
            with self._conn() as conn:
                (in_recovery,) = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if in_recovery and conn.execute("SELECT pg_is_wal_replay_paused()").fetchone()[0]:
                    conn.execute("SELECT pg_wal_replay_resume()")

        Retrying(
            stop=stop_after_delay(30),
            wait=wait_fixed(1),
            reraise=True,
            retry=retry_if_exception_type(psycopg.OperationalError),
        )(resume)
