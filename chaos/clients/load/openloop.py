"""Open-loop load at a fixed rate for failover measurements: the seed's 80/20 read/write mix through every write path
at once, at a fraction of the capacity the same run measured first through each path (issue 18).

Open loop, because a closed-loop load (N users each waiting for its own answer) slows down with the cluster: it
offers less work exactly while a failover makes the cluster slow, and the failover then looks cheaper than it is
for an application whose requests keep arriving. `pgbench --rate` schedules transactions on its own (Poisson) clock,
whatever the server does, from C clients, so the generator's CPU stays small; it is measured (children's rusage)
and reported next to the containers' (chaos.clients.load.cpu).

pgbench ends a client whose connection breaks, and exits when none is left (a failover does that); a supervisor
starts it again 100 ms later with new connections, as an application's pool reconnects, until the load stops.

Counting: pgbench prints its summary only when it ends by itself (`-T` over, or every client aborted). Stopped from
outside it prints nothing (SIGINT/SIGTERM end it at once, and a SIGINT inherited as ignored is not seen at all), so
the transactions of the run in progress are counted from its once-a-second progress lines (`-P 1`: tps over the
last second, failed, schedule lag). A run that ended by itself is counted from its summary (exact); a stopped run
loses at most the last, partial second. The schedule lag says whether the generator kept to its clock.

Capacity: each path alone, closed loop, `CAPACITY_S` seconds with `CLIENTS` clients. Under load every path runs at
the same time at `fraction` x its own capacity / the number of paths, so the total offered load is `fraction` of
what one path can carry: "50 % load" is half the cluster's measured capacity, spread over the write paths. The
capacities are measured once per run (DPG_RUN_ID) and kept in the report directory, so a benchmark's N runs share
them instead of spending 20 s each on measuring again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from topology.endpoints import Endpoint
from topology.errors import TopologyError
from topology.evidence import OUT_DIR

from . import pgbench, schema

log = logging.getLogger("dpg.load")

CLIENTS = 4
CAPACITY_S = 5
RESTART_PAUSE_S = 0.1
STOP_GRACE_S = 5.0
#: `progress: 12.0 s, 98.0 tps, lat 0.9 ms stddev 1.0, 0 failed, lag 0.3 ms` (pgbench -P 1 with --rate)
PROGRESS = re.compile(r"^progress: ([\d.]+) s, ([\d.]+) tps(.*)$", re.M)
FAILED = re.compile(r", (\d+) failed")
LAG = re.compile(r", lag ([\d.]+) ms")


def fraction_from_env() -> float | None:
    """DPG_LOAD_FRACTION (0 < f <= 1): run the failover experiments under open-loop load; unset = idle."""
    raw = os.environ.get("DPG_LOAD_FRACTION", "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise TopologyError(f"DPG_LOAD_FRACTION={raw!r}: a share of the measured capacity, 0 < f <= 1 (0.5 = 50 %)")
    return value


def _capacity_file() -> Path:
    return OUT_DIR / f"capacity-{os.environ.get('DPG_RUN_ID', 'adhoc')}.json"


def measure_capacity(eps: list[Endpoint], *, work_dir: Path) -> dict[str, float]:
    """Transactions/s of the 80/20 mix each path carries alone (closed loop), measured once per run."""
    path = _capacity_file()
    if path.exists():
        kept = json.loads(path.read_text())
        if all(ep.name in kept for ep in eps):
            return {ep.name: float(kept[ep.name]) for ep in eps}
    schema.prepare(eps[0])
    found = {}
    for ep in eps:
        r = pgbench.run("mix", ep, ep.name, clients=CLIENTS, seconds=CAPACITY_S, work_dir=work_dir)
        found[ep.name] = r.ops_per_s
        log.info("capacity through %s: %.0f tx/s (80/20 mix, %d clients, closed loop)", ep.name, r.ops_per_s, CLIENTS)
    schema.clear_events(eps[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(found))
    return found


@dataclass
class PathLoad:
    endpoint: Endpoint
    rate: float  # transactions/s offered
    transactions: int = 0
    failed: int = 0
    restarts: int = 0
    counted_from_progress: int = 0  # runs stopped from outside: counted from their progress lines
    max_lag_ms: float = 0.0  # the worst 1-s average of pgbench's schedule lag (its own clock vs the rate)
    errors: list[str] = field(default_factory=list)


class OpenLoopLoad:
    """`with OpenLoopLoad(rates) as load:` offers each path its rate until the block ends; then `load.summary()`."""

    def __init__(self, paths: list[PathLoad], *, work_dir: Path, max_seconds: float = 900.0):
        self.paths = paths
        self.work_dir = work_dir
        self.max_seconds = max_seconds
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._cpu0 = 0.0
        self.cpu_s = 0.0
        self.seconds = 0.0

    @classmethod
    def at(cls, eps: list[Endpoint], fraction: float, *, work_dir: Path) -> OpenLoopLoad:
        capacity = measure_capacity(eps, work_dir=work_dir)
        share = fraction / len(eps)
        return cls([PathLoad(ep, max(capacity[ep.name] * share, 1.0)) for ep in eps], work_dir=work_dir)

    def _command(self, p: PathLoad, seconds: int) -> list[str]:
        ep = p.endpoint
        args = [pgbench.binary(), "-n", "-M", "simple", "-c", str(CLIENTS), "-j", "1", "-R", f"{p.rate:.1f}",
                "-P", "1", "-T", str(seconds), pgbench.conninfo(ep, "load")]  # fmt: skip
        for name, weight in pgbench.WORKLOADS["mix"]:
            f = self.work_dir / f"openloop-{name}.sql"
            f.write_text(pgbench.SCRIPTS[name])
            args += ["-f", f"{f}@{weight}"]
        return args

    def _supervise(self, p: PathLoad, deadline: float) -> None:
        env = {**os.environ, "PGPASSWORD": p.endpoint.password, "PGCONNECT_TIMEOUT": "2"}
        while not self.stop.is_set() and time.monotonic() < deadline:
            seconds = max(int(deadline - time.monotonic()), 1)
            proc = subprocess.Popen(self._command(p, seconds), env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)  # fmt: skip
            with self._lock:
                self.procs[p.endpoint.name] = proc
            out = "".join(proc.stdout)  # until pgbench exits or is stopped; bounded by -T and __exit__
            proc.wait()
            count_run(p, out)
            if self.stop.is_set():
                break
            p.restarts += 1
            self.stop.wait(RESTART_PAUSE_S)

    def __enter__(self) -> OpenLoopLoad:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._cpu0 = _children_cpu()
        self._t0 = time.monotonic()
        deadline = self._t0 + self.max_seconds
        for p in self.paths:
            t = threading.Thread(target=self._supervise, args=(p, deadline), name=f"load-{p.endpoint.name}",
                                 daemon=True)  # fmt: skip
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        with self._lock:
            procs = list(self.procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()  # pgbench ends at once and prints no summary: its progress lines are counted
        for t in self.threads:
            t.join(timeout=STOP_GRACE_S)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for t in self.threads:
            t.join(timeout=STOP_GRACE_S)
        self.seconds = time.monotonic() - self._t0
        self.cpu_s = _children_cpu() - self._cpu0

    def summary(self) -> dict:
        return {
            "paths": {
                p.endpoint.name: {
                    "rate_tx_s": round(p.rate, 1),
                    "transactions": p.transactions,
                    "achieved_tx_s": round(p.transactions / self.seconds, 1) if self.seconds else None,
                    "failed": p.failed,
                    "restarts": p.restarts,
                    "counted_from_progress": p.counted_from_progress,
                    "max_schedule_lag_ms": round(p.max_lag_ms, 1),
                    "errors": p.errors[:3],
                }
                for p in self.paths
            },
            "offered_tx_s": round(sum(p.rate for p in self.paths), 1),
            "seconds": round(self.seconds, 1),
            "generator_cpu_s": round(self.cpu_s, 2),
            "generator_cores": round(self.cpu_s / self.seconds, 3) if self.seconds else None,
        }


def count_run(p: PathLoad, out: str) -> None:
    """Add one pgbench run's transactions to `p`: its summary when it printed one, else its progress lines."""
    progress = []  # (seconds since start, tps over the last interval, failed in it)
    for t, tps, rest in PROGRESS.findall(out):
        failed, lag = FAILED.search(rest), LAG.search(rest)
        progress.append((float(t), float(tps), int(failed.group(1)) if failed else 0))
        p.max_lag_ms = max(p.max_lag_ms, float(lag.group(1)) if lag else 0.0)
    try:
        done, failed, _ = pgbench.parse_summary(out)
    except pgbench.PgbenchError:
        if not progress:  # it never ran a second: refused connections, or stopped at once
            p.errors.append((out.strip().splitlines() or ["?"])[-1][:160])
            return
        last = 0.0
        done = failed = 0
        for now, tps, nfail in progress:
            done += round(tps * (now - last))
            failed += nfail
            last = now
        p.counted_from_progress += 1
    p.transactions += done
    p.failed += failed


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
