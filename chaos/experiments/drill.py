"""Disaster-recovery drill helpers: timed phases (RTO), a heartbeat (RPO), table fingerprints, the report line.

    drill = Drill("total loss")
    with Heartbeat(endpoints.haproxy()) as hb:
        with drill.phase("destroy"): ...
    with drill.phase("restore"): ...
    drill.report(rto_s=drill.span("restore", "writes accepted"), rpo_s=rpo_seconds(hb.last_acked, restored_beat))

RTO is the sum of the phases from the loss to writes accepted again; RPO is how much committed time is missing:
the last heartbeat the client saw acknowledged minus the newest heartbeat the restored database holds.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import allure
import psycopg

from topology import evidence
from topology.endpoints import Endpoint, close_quietly
from topology.names import probe_schema

log = logging.getLogger("dpg.drill")

HEARTBEAT_UPSERT = (
    f"INSERT INTO {probe_schema()}.heartbeat (id, beat) VALUES (1, clock_timestamp()) "
    "ON CONFLICT (id) DO UPDATE SET beat = excluded.beat RETURNING extract(epoch FROM beat)"
)
HEARTBEAT_READ = f"SELECT extract(epoch FROM beat) FROM {probe_schema()}.heartbeat WHERE id = 1"
#: count and md5 over the rows in a stable order: equal fingerprints = the same rows, byte for byte
FINGERPRINT = "SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM {} t"


@dataclass
class Drill:
    """The phases of one drill, each an Allure step, timed on the monotonic clock."""

    name: str
    phases: dict[str, float] = field(default_factory=dict)
    _ends: dict[str, float] = field(default_factory=dict)
    _starts: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        with allure.step(name):
            started = time.monotonic()
            self._starts[name] = started
            try:
                yield
            finally:
                self._ends[name] = time.monotonic()
                self.phases[name] = round(self._ends[name] - started, 2)

    def span(self, first: str, last: str) -> float:
        """Seconds from the start of phase `first` to the end of phase `last` (an RTO)."""
        return round(self._ends[last] - self._starts[first], 2)

    def report(self, *, rto_s: float | None, rpo_s: float | None, **facts) -> str:
        """One `dr` row in measurements.jsonl and the RTO/RPO line attached to the Allure report."""
        line = f"{self.name}: RTO {_fmt(rto_s)} s, RPO {_fmt(rpo_s)} s; phases " + ", ".join(
            f"{k} {v:.1f} s" for k, v in self.phases.items()
        )
        evidence.record_measurement("dr", drill=self.name, phases=self.phases, rto_s=rto_s, rpo_s=rpo_s, **facts)
        evidence.attach_text("RTO/RPO", line + "\n" + "\n".join(f"{k}: {v}" for k, v in facts.items()))
        allure.dynamic.description(line)
        log.info(line)
        return line


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f}"


class Heartbeat(threading.Thread):
    """Upsert probe.heartbeat once a second through an entry point; remember the acknowledged beats (server time)."""

    def __init__(self, endpoint: Endpoint, *, every: float = 1.0, max_seconds: float = 900.0):
        super().__init__(name="dr-heartbeat", daemon=True)
        self.endpoint, self.every, self.max_seconds = endpoint, every, max_seconds
        self.acked: list[float] = []
        self.failed = 0
        self._halt = threading.Event()

    @property
    def last_acked(self) -> float | None:
        return self.acked[-1] if self.acked else None

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        conn = None
        while not self._halt.is_set() and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = psycopg.connect(**self.endpoint.conninfo(connect_timeout=2), autocommit=True)
                    conn.execute("SET statement_timeout = 2000")
                self.acked.append(float(conn.execute(HEARTBEAT_UPSERT).fetchone()[0]))
            except Exception:
                self.failed += 1
                close_quietly(conn)
                conn = None
            self._halt.wait(self.every)
        close_quietly(conn)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_beats(self, n: int, within: float = 15.0) -> bool:
        base = len(self.acked)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if len(self.acked) >= base + n:
                return True
            time.sleep(0.2)
        return False


def rpo_seconds(last_acked: float | None, restored_beat: float | None) -> float | None:
    """Committed time lost: the client's last acknowledged beat minus the newest beat the restore holds."""
    if last_acked is None or restored_beat is None:
        return None
    return round(max(0.0, last_acked - restored_beat), 2)


def fingerprints(query: Callable[[str], str], tables: list[str]) -> dict[str, str]:
    """table -> 'rows:md5' through any one-value query function (psycopg on the live cluster, psql in a scratch)."""
    return {t: str(query(FINGERPRINT.format(t))) for t in tables}


def live_query(endpoint: Endpoint) -> Callable[[str], str]:
    """A one-value query function on an entry point (a new connection per call: the cluster may move)."""

    def run(sql: str):
        with psycopg.connect(**endpoint.conninfo(connect_timeout=5), autocommit=True) as conn:
            conn.execute("SET statement_timeout = 60000")
            cur = conn.execute(sql)
            row = cur.fetchone() if cur.description is not None else None
            return None if row is None else row[0]

    return run
