"""pgbench as the load generator for the per-layer benchmark: C clients, so the numbers show the layers and the
server rather than the Python client's ceiling.

Scripts mirror the Locust users (point read, write, 80/20 mix, vector search). Every transaction is logged
(`--log`), so p50/p95/p99 are exact nearest-rank values over all transactions, not pgbench's averages.
Bounded by `-T` and a subprocess timeout. Simple query protocol everywhere: PgBouncer in transaction mode
and the TCP routers see the same traffic as the direct connection.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from topology.endpoints import Endpoint

from . import schema

SCRIPTS = {
    "read": f"\\set id random(1, {schema.KV_ROWS})\nSELECT v FROM bench.kv WHERE id = :id;\n",
    "write": f"\\set id random(1, {schema.KV_ROWS})\n\\set v random(0, 1000000000)\n"
    "INSERT INTO bench.events (k, v) VALUES (:id, :v);\n",
    "vector": "\\set id random(1, :rows)\nSELECT id FROM embeddings ORDER BY embedding <=> "
    "(SELECT embedding FROM embeddings WHERE id = :id) LIMIT 10;\n",
}
#: workload -> [(script, weight)]
WORKLOADS = {
    "read": [("read", 1)],
    "write": [("write", 1)],
    "mix": [("read", 8), ("write", 2)],
    "vector": [("vector", 1)],
}
GRACE_S = 30.0


class PgbenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class PgbenchResult:
    workload: str
    target: str
    clients: int
    seconds: float
    transactions: int
    failed: int
    ops_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    cpu_s: float  # CPU time pgbench itself used (user + sys)
    command: str


def binary() -> str:
    found = shutil.which("pgbench") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)), None
    )
    if not found:
        raise PgbenchError("pgbench not found: install postgresql-client (Debian: apt-get install postgresql-client)")
    return found


def version() -> str:
    out = subprocess.run([binary(), "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    return out or "?"


def conninfo(ep: Endpoint, purpose: str) -> str:
    """The endpoint as one libpq connection string (pgbench's dbname argument), so that what `-h/-p` cannot say
    reaches libpq too: libpq multi-host needs target_session_attrs=read-write, or pgbench writes to whichever node
    answers first (2026-12-03: 29 restarts and 12 % of the offered rate, every write to a replica failing). The
    password stays in PGPASSWORD, out of the process list."""
    params = ep.conninfo(application_name=f"dpg-chaos:{purpose}")
    params.pop("password", None)
    params.pop("connect_timeout", None)  # PGCONNECT_TIMEOUT from the caller's environment
    return " ".join(f"{k}={v}" for k, v in params.items() if v)


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank (as reports/aggregate.py): always a measured value."""
    if not sorted_values:
        return None
    return sorted_values[max(math.ceil(p / 100 * len(sorted_values)), 1) - 1]


def latencies_ms(log_files: list[Path]) -> list[float]:
    """Per-transaction latencies from pgbench --log files: `client tx latency_us script epoch us` per line
    (a failed transaction has `failed` instead of the latency and is skipped here)."""
    out = []
    for f in log_files:
        with open(f) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    out.append(int(parts[2]) / 1000.0)
    out.sort()
    return out


def parse_summary(text: str) -> tuple[int, int, float]:
    """(processed, failed, tps) from pgbench's summary; tps excludes the initial connection time."""
    processed = re.search(r"number of transactions actually processed: (\d+)", text)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    if not processed or not tps:
        raise PgbenchError("pgbench printed no summary:\n" + text[-1500:])
    return int(processed.group(1)), int(failed.group(1)) if failed else 0, float(tps.group(1))


def run(
    workload: str,
    ep: Endpoint,
    target: str,
    *,
    clients: int,
    seconds: int,
    work_dir: Path,
    variables: dict[str, str] | None = None,
) -> PgbenchResult:
    """One bounded pgbench run of `workload` through `ep`."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")
    run_dir = work_dir / f"pgbench-{target}-{workload}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    args = [
        binary(),
        "-n",
        "-c",
        str(clients),
        "-j",
        str(min(clients, os.cpu_count() or 1)),
        "-T",
        str(seconds),
        "--log",
        "--log-prefix",
        str(run_dir / "tx"),
        conninfo(ep, f"bench:{target}"),
    ]
    for script, weight in WORKLOADS[workload]:
        path = run_dir / f"{script}.sql"
        path.write_text(SCRIPTS[script])
        args[1:1] = ["-f", f"{path}@{weight}"]
    for k, v in (variables or {}).items():
        args[1:1] = ["-D", f"{k}={v}"]
    env = dict(os.environ, PGPASSWORD=ep.password, PGCONNECT_TIMEOUT="5")
    before = os.times()
    try:
        proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=seconds + GRACE_S)
    except subprocess.TimeoutExpired as exc:
        raise PgbenchError(f"pgbench {workload} via {target} did not finish within {seconds + GRACE_S:.0f} s") from exc
    after = os.times()
    text = proc.stdout + proc.stderr
    (run_dir / "pgbench.out").write_text(text)
    processed, failed, tps = parse_summary(text)
    lat = latencies_ms(sorted(run_dir.glob("tx*")))
    shown = " ".join(a if not a.startswith(str(run_dir)) else a.replace(str(run_dir), "<dir>") for a in args)
    return PgbenchResult(
        workload,
        target,
        clients,
        seconds,
        processed,
        failed,
        tps,
        percentile(lat, 50),
        percentile(lat, 95),
        percentile(lat, 99),
        round((after.children_user - before.children_user) + (after.children_system - before.children_system), 2),
        shown,
    )
