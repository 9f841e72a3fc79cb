"""PrimaryCensus: ask every Patroni node directly, several times a second, whether it is a writable primary.

The write probes see the cluster through routers, which hide a second primary that no router points at; the
census asks each node itself, so "never two primaries" is checked against the databases, not the routers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psycopg

from topology import endpoints
from topology.endpoints import close_quietly
from topology.names import PATRONI_NODES


@dataclass(frozen=True)
class Sample:
    node: str
    at: float  # monotonic
    primary: bool | None  # None: the node did not answer


class _NodePoller(threading.Thread):
    def __init__(self, node: str, out: list[Sample], stop: threading.Event, every: float, max_seconds: float):
        super().__init__(name=f"census-{node}", daemon=True)
        self.node, self.out, self.stop_event, self.every = node, out, stop, every
        self.deadline = time.monotonic() + max_seconds

    def run(self) -> None:
        conn = None
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            try:
                if conn is None:
                    conn = psycopg.connect(**endpoints.node(self.node).conninfo(connect_timeout=1), autocommit=True)
                    conn.execute("SET statement_timeout = 1000")
                primary = not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            except Exception:
                primary = None
                close_quietly(conn)
                conn = None
            self.out.append(Sample(self.node, time.monotonic(), primary))
            self.stop_event.wait(self.every)
        close_quietly(conn)


class PrimaryCensus:
    """Run as a context manager around an experiment; then ask `max_primaries()` and `primaries_at()`."""

    def __init__(self, nodes: tuple[str, ...] = PATRONI_NODES, *, every: float = 0.25, max_seconds: float = 600):
        self.samples: list[Sample] = []
        self.stop = threading.Event()
        self.pollers = [_NodePoller(n, self.samples, self.stop, every, max_seconds) for n in nodes]
        self.every = every

    def __enter__(self) -> PrimaryCensus:
        for p in self.pollers:
            p.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for p in self.pollers:
            p.join(timeout=5)

    def primaries_at(self, t: float, *, stale_after: float = 1.5) -> set[str]:
        """Nodes whose latest answer at or before `t` (not older than `stale_after` s) said primary."""
        latest: dict[str, Sample] = {}
        for s in self.samples:
            if s.at <= t and (s.node not in latest or s.at > latest[s.node].at):
                latest[s.node] = s
        return {n for n, s in latest.items() if s.primary and t - s.at <= stale_after}

    def max_primaries(self, start: float | None = None, end: float | None = None) -> tuple[int, float | None, set[str]]:
        """(most nodes that were primary at the same time, when, which) within [start, end]."""
        best: tuple[int, float | None, set[str]] = (0, None, set())
        for s in sorted(self.samples, key=lambda s: s.at):
            if (start is not None and s.at < start) or (end is not None and s.at > end):
                continue
            now = self.primaries_at(s.at)
            if len(now) > best[0]:
                best = (len(now), s.at, now)
        return best

    def first_time_without_primary(self, after: float) -> float | None:
        """When, after `after`, the census first saw no node acting as primary."""
        for s in sorted(self.samples, key=lambda s: s.at):
            if s.at > after and not self.primaries_at(s.at):
                return s.at
        return None

    def timeline(self) -> list[dict]:
        return [{"node": s.node, "t": round(s.at, 3), "primary": s.primary} for s in self.samples]
