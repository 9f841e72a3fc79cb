"""`python -m reports layers`: throughput and latency per entry point in one run, as a ratio to direct PostgreSQL.

A benchmark, not a test: it needs the running stacks (patroni, pgbouncer, traefik, vector; citus where
present), sends bounded load to 127.0.0.1 only and prints one table. Two load generators:

* **pgbench** (C clients, `-c` connections, every transaction logged): point read, write, 80/20 mix through
  direct (the Patroni leader's own port), HAProxy, PgBouncer, Traefik and the Citus coordinator; vector
  search on the vector DB. This is the ceiling of the layers on this machine.
* **Locust** (Python/psycopg users, chaos/clients/load/locustfile.py): the 80/20 mix per layer and vector search: what
  a Python application sees; its ceiling is the Locust process (one core).

Every row is compared with the seed's targets (read > 10k ops/s, write > 5k ops/s, p50 < 10 ms, p95 < 50 ms)
and says what limits it, from CPU accounting taken during the run (host busy share, each container's cores,
the load generator's own CPU). Rows go to layers.json / layers.md in --out and, as kind "layer_bench", to the
measurements file (topology/evidence.py) for the scorecard.

Exit codes: 0 measured, 1 the baseline (direct) could not be measured, 2 bad arguments or cluster unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

#: the seed's claims (issue 7): ops/s per workload, latency for every workload
TARGET_OPS = {"read": 10_000.0, "write": 5_000.0}
TARGET_P50_MS = 10.0
TARGET_P95_MS = 50.0
#: a component at or above this share of one core is the bottleneck when it cannot use more than one
SATURATED_CORE = 0.85
#: the host counts as CPU-bound at or above this busy share of all cores
SATURATED_HOST = 0.85
#: the load generator's own CPU in the accounting (chaos/clients/load/cpu.py)
CLIENT = "client (load generator)"
#: host CPU not accounted to the watched containers or the load generator (other work on the machine)
OTHER = "other processes"
DEFAULT_WORKLOADS = ("read", "write", "mix")


# ---------------------------------------------------------------- rows and verdicts (pure, unit-testable)


@dataclass
class LayerRow:
    engine: str  # pgbench | locust
    workload: str  # read | write | mix | vector
    layer: str
    clients: int
    seconds: float
    ops: int
    failed: int
    ops_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    cpu: dict[str, float] = field(default_factory=dict)  # container/client -> cores
    host_busy: float | None = None
    limit: str = ""
    ratio_ops: float | None = None
    ratio_p50: float | None = None
    ratio_p95: float | None = None
    ratio_p99: float | None = None
    targets: str = ""
    note: str = ""


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def add_ratios(rows: list[LayerRow]) -> None:
    """Each row's ops/s and latency percentiles as a ratio to the direct row of the same engine x workload."""
    base = {(r.engine, r.workload): r for r in rows if r.layer == "direct"}
    for r in rows:
        d = base.get((r.engine, r.workload))
        if d is None:
            continue
        r.ratio_ops = _ratio(r.ops_per_s, d.ops_per_s)
        r.ratio_p50, r.ratio_p95, r.ratio_p99 = (
            _ratio(r.p50_ms, d.p50_ms),
            _ratio(r.p95_ms, d.p95_ms),
            _ratio(r.p99_ms, d.p99_ms),
        )


def target_verdict(row: LayerRow) -> str:
    """'ops/s ✗ · p50 ✓ · p95 ✓' against the seed's targets (ops/s only for read and write)."""
    parts = []
    want = TARGET_OPS.get(row.workload)
    if want is not None:
        parts.append(f"ops/s {'✓' if row.ops_per_s > want else '✗'}")
    for name, value, bound in (("p50", row.p50_ms, TARGET_P50_MS), ("p95", row.p95_ms, TARGET_P95_MS)):
        parts.append(f"{name} {'✓' if value is not None and value < bound else '✗'}")
    return " · ".join(parts)


def limit_of(row: LayerRow, *, layer_containers: tuple[str, ...], db_container: str | None) -> str:
    """What bounds the number, read from the CPU accounting of the run (see the module docstring)."""
    cpu = row.cpu
    bouncer = cpu.get("dpg-pgbouncer")
    if "dpg-pgbouncer" in layer_containers and bouncer is not None and bouncer >= SATURATED_CORE:
        return f"pooler: PgBouncer is single-threaded, at {bouncer:.2f} core"
    client = cpu.get(CLIENT)
    if row.engine == "locust" and client is not None and client >= SATURATED_CORE:
        return f"client: Locust is one Python process, at {client:.2f} core"
    if row.host_busy is not None and row.host_busy >= SATURATED_HOST:
        shares = [f"{_short(n)} {c:.2f}" for n, c in sorted(cpu.items(), key=lambda kv: -kv[1])[:4] if c >= 0.05]
        return f"CPU: host {row.host_busy:.0%} busy ({', '.join(shares)} cores)"
    db = cpu.get(db_container or "", 0.0)
    if row.host_busy is not None:
        return (
            f"round trips: host {row.host_busy:.0%} busy, PostgreSQL {db:.2f} core; "
            f"{row.clients} clients each wait for the previous answer"
        )
    return "unknown (no CPU accounting)"


def _short(name: str) -> str:
    return "client" if name == CLIENT else name.removeprefix("dpg-")


# ---------------------------------------------------------------- rendering

HEADER = (
    "engine",
    "workload",
    "entry point",
    "clients",
    "ops/s (× direct)",
    "p50 ms (×)",
    "p95 ms (×)",
    "p99 ms (×)",
    "failed",
    "vs seed targets",
    "what limits it",
)


def _fmt_ms(v: float | None, ratio: float | None) -> str:
    if v is None:
        return "–"
    text = f"{v:.2f}" if v < 10 else f"{v:.1f}"
    return text + (f" ({ratio:.2f}×)" if ratio is not None else "")


def cells(r: LayerRow) -> tuple[str, ...]:
    ops = f"{r.ops_per_s:,.0f}" + (f" ({r.ratio_ops:.2f}×)" if r.ratio_ops is not None else "")
    return (
        r.engine,
        r.workload,
        r.layer,
        str(r.clients),
        ops,
        _fmt_ms(r.p50_ms, r.ratio_p50),
        _fmt_ms(r.p95_ms, r.ratio_p95),
        _fmt_ms(r.p99_ms, r.ratio_p99),
        str(r.failed),
        r.targets,
        r.limit + (f" — {r.note}" if r.note else ""),
    )


def markdown_table(rows: list[LayerRow]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def text_table(rows: list[LayerRow]) -> str:
    short = HEADER[:-1]
    body = [cells(r)[:-1] for r in rows]
    widths = [max(len(c) for c in col) for col in zip(short, *body, strict=True)]
    out = [
        "  ".join(c.ljust(w) for c, w in zip(short, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in body]
    out += ["", "what limits each row:"] + [f"  {r.engine:7} {r.workload:6} {r.layer:9} {cells(r)[-1]}" for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------- running


def _reachable(ep) -> str | None:
    """None if `SELECT 1` answers, else why not."""
    import psycopg

    try:
        with psycopg.connect(**ep.conninfo(connect_timeout=3), autocommit=True) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return first[:160]


def _machine() -> dict[str, Any]:
    load = Path("/proc/loadavg").read_text().split()[:3]
    try:
        others = subprocess.run(
            ["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True, timeout=10
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        others = []
    return {"cores": os.cpu_count(), "loadavg_before": load, "containers_running": sorted(others)}


@dataclass
class Plan:
    seconds: int
    clients: int
    locust_seconds: int
    locust_users: int
    layers: list[str]
    workloads: list[str]
    vector: bool
    out: Path
    warmup: int = 3


def _with_child_cpu(fn, *args, **kwargs):
    """(fn's result, CPU seconds its child processes used): the load generator's own share of the machine."""
    before = os.times()
    result = fn(*args, **kwargs)
    after = os.times()
    return result, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def run_plan(plan: Plan, log=print) -> tuple[list[LayerRow], dict[str, Any]]:
    from chaos.clients.load import cpu, locust_run, pgbench, schema, targets
    from topology.names import CITUS_NODES, PATRONI_NODES, container

    leader = targets.leader()
    db_of = {layer: container(leader) for layer in targets.LAYERS}
    db_of["citus"] = container("citus-coordinator")
    db_of["vector"] = "dpg-vector-db"
    eps, skipped = {}, {}
    for layer in plan.layers:
        ep = targets.endpoint(layer)
        why = _reachable(ep)
        if why is None:
            eps[layer] = ep
        else:
            skipped[layer] = why
            log(f"  {layer}: not measured ({why})")
    if "direct" not in eps:
        raise RuntimeError(f"direct PostgreSQL (leader {leader}) not reachable: {skipped.get('direct')}")
    schema.prepare(eps["direct"])
    if "citus" in eps:
        schema.prepare(eps["citus"], distribute=True)  # its own database: same tables, distributed
    vec_ep = targets.endpoint("vector") if plan.vector else None
    vec_rows = 0
    if vec_ep is not None:
        why = _reachable(vec_ep)
        if why is None:
            vec_rows = schema.vector_rows(vec_ep)
        else:
            skipped["vector"], vec_ep = why, None
            log(f"  vector: not measured ({why})")
    watched = [container(n) for n in (*PATRONI_NODES, *CITUS_NODES)] + [
        "dpg-haproxy",
        "dpg-pgbouncer",
        "dpg-traefik",
        "dpg-vector-db",
    ]
    ids = cpu.container_ids(watched)
    rows: list[LayerRow] = []

    def measure(engine: str, workload: str, layer: str, fn) -> None:
        sampler = cpu.CpuSampler(ids).start()
        try:
            res, client_cpu = fn()
        except Exception as exc:
            log(f"  {engine} {workload} {layer}: FAILED {exc}")
            skipped[f"{engine}:{workload}:{layer}"] = str(exc)[:300]
            return
        use = sampler.stop(client_cpu)
        known = sum(use.containers.values())
        if ids and use.host_busy * use.cores - known >= 0.05:  # everything else on the machine
            use.containers[OTHER] = use.host_busy * use.cores - known
        row = LayerRow(
            engine,
            workload,
            layer,
            plan.clients if engine == "pgbench" else plan.locust_users,
            res.seconds,
            getattr(res, "transactions", getattr(res, "requests", 0)),
            res.failed if engine == "pgbench" else res.failures,
            res.ops_per_s,
            res.p50_ms,
            res.p95_ms,
            res.p99_ms,
            {k: round(v, 3) for k, v in use.containers.items() if v >= 0.005},
            round(use.host_busy, 3),
        )
        row.limit = limit_of(row, layer_containers=targets.LAYER_CONTAINERS.get(layer, ()), db_container=db_of[layer])
        row.targets = target_verdict(row)
        rows.append(row)
        log(
            f"  {engine:7} {workload:6} {layer:9} {row.ops_per_s:9,.0f} ops/s  p50 {row.p50_ms} p95 {row.p95_ms} "
            f"p99 {row.p99_ms} ms  failed {row.failed}  host {use.host_busy:.0%}"
        )

    work = plan.out / "work"
    if plan.warmup:  # a fresh cluster's first seconds (cold caches, connection set-up) would penalise direct
        pgbench.run("mix", eps["direct"], "warmup", clients=plan.clients, seconds=plan.warmup, work_dir=work)
        schema.clear_events(eps["direct"])
    for workload in plan.workloads:
        for layer, ep in eps.items():
            measure(
                "pgbench",
                workload,
                layer,
                lambda ep=ep, layer=layer, workload=workload: _with_child_cpu(
                    pgbench.run, workload, ep, layer, clients=plan.clients, seconds=plan.seconds, work_dir=work
                ),
            )
            if workload in ("write", "mix"):
                schema.clear_events(ep if layer == "citus" else eps["direct"])
    if vec_ep is not None:
        measure(
            "pgbench",
            "vector",
            "vector",
            lambda: _with_child_cpu(
                pgbench.run,
                "vector",
                vec_ep,
                "vector",
                clients=plan.clients,
                seconds=plan.seconds,
                work_dir=work,
                variables={"rows": str(vec_rows)},
            ),
        )
    if plan.locust_seconds > 0:
        runs = [("MixUser", "mix", layer) for layer in eps] + (
            [("VectorSearchUser", "vector", "vector")] if vec_ep is not None else []
        )
        for user_class, workload, layer in runs:
            measure(
                "locust",
                workload,
                layer,
                lambda user_class=user_class, layer=layer: _with_child_cpu(
                    locust_run.run,
                    user_class,
                    layer,
                    users=plan.locust_users,
                    seconds=plan.locust_seconds,
                    out_dir=work,
                ),
            )
            if workload == "mix":
                schema.clear_events(eps[layer] if layer == "citus" else eps["direct"])
    add_ratios(rows)
    meta = {
        "leader": leader,
        "direct_port": eps["direct"].port,
        "not_measured": skipped,
        "pgbench": pgbench.version(),
        "vector_rows": vec_rows,
    }
    return rows, meta


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=int, default=10, help="pgbench run time per workload x entry point (default 10)")
    p.add_argument("--clients", type=int, default=8, help="pgbench connections (default 8)")
    p.add_argument(
        "--locust-seconds",
        type=int,
        default=None,
        help="Locust run time per entry point (default: --seconds; 0 = no Locust rows)",
    )
    p.add_argument("--locust-users", type=int, default=8, help="Locust users (default 8)")
    p.add_argument(
        "--layers",
        default="direct,haproxy,pgbouncer,traefik,citus",
        help="comma list (default: all; a layer whose stack is not running is reported and skipped)",
    )
    p.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS), help="comma list of read,write,mix")
    p.add_argument("--no-vector", action="store_true", help="skip vector search on the vector DB")
    p.add_argument("--warmup", type=int, default=3, help="unrecorded pgbench mix through direct first (s, default 3)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default reports/out/layers-<stamp>)")


def _parse(args: argparse.Namespace) -> Plan:
    from chaos.clients.load.targets import LAYERS

    layers = [x.strip() for x in args.layers.split(",") if x.strip()]
    workloads = [x.strip() for x in args.workloads.split(",") if x.strip()]
    if not layers or set(layers) - set(LAYERS):
        raise ValueError(f"--layers: unknown {sorted(set(layers) - set(LAYERS))}; known: {', '.join(LAYERS)}")
    if "direct" not in layers:
        layers.insert(0, "direct")  # the baseline of every ratio
    if not workloads or set(workloads) - set(DEFAULT_WORKLOADS):
        raise ValueError(f"--workloads: known: {', '.join(DEFAULT_WORKLOADS)}")
    locust_s = args.seconds if args.locust_seconds is None else args.locust_seconds
    if (
        not 1 <= args.seconds <= 300
        or not 0 <= locust_s <= 300
        or not 1 <= args.clients <= 64
        or not 1 <= args.locust_users <= 64
    ):
        raise ValueError("bounds: --seconds 1..300, --locust-seconds 0..300, --clients and --locust-users 1..64")
    out = args.out or REPO_ROOT / "reports" / "out" / time.strftime("layers-%Y%m%d-%H%M%S")
    ordered = [x for x in LAYERS if x in layers]
    if not 0 <= args.warmup <= 60:
        raise ValueError("--warmup must be 0..60 s")
    return Plan(
        args.seconds,
        args.clients,
        locust_s,
        args.locust_users,
        ordered,
        workloads,
        not args.no_vector,
        out.resolve(),
        args.warmup,
    )


def run(args: argparse.Namespace) -> int:
    from topology.errors import TopologyError
    from topology.evidence import OUT_DIR, record_measurement

    try:
        plan = _parse(args)
    except ValueError as err:
        print(f"layers: {err}", file=sys.stderr)
        return 2
    plan.out.mkdir(parents=True, exist_ok=True)
    machine = _machine()
    print(
        f"layers: pgbench {plan.seconds} s x {plan.clients} clients, Locust {plan.locust_seconds} s x "
        f"{plan.locust_users} users, through {', '.join(plan.layers)}; load average before: "
        f"{' '.join(machine['loadavg_before'])} on {machine['cores']} cores",
        flush=True,
    )
    started = time.time()
    try:
        rows, meta = run_plan(plan, log=lambda m: print(m, flush=True))
    except (TopologyError, RuntimeError) as err:
        print(f"layers: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        print(
            f"layers: cluster not usable ({type(err).__name__}: {str(err).strip()[:200]}); start it: "
            "python -m topology up patroni pgbouncer traefik vector",
            file=sys.stderr,
        )
        return 2
    meta |= {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "machine": machine,
        "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
        "targets": {"ops_per_s": TARGET_OPS, "p50_ms": TARGET_P50_MS, "p95_ms": TARGET_P95_MS},
        "percentiles": "nearest-rank over every logged transaction (pgbench); Locust's approximated "
        "percentiles (its CSV)",
    }
    (plan.out / "layers.json").write_text(
        json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=2, default=str) + "\n"
    )
    md = (
        f"# Per-layer benchmark {meta['started']}\n\n{markdown_table(rows)}\n\n"
        f"Direct = Patroni leader {meta['leader']} on port {meta['direct_port']}. {meta['pgbench']}. "
        f"Not measured: {meta['not_measured'] or 'none'}.\n"
    )
    (plan.out / "layers.md").write_text(md)
    for r in rows:
        record_measurement("layer_bench", **asdict(r))
    print()
    print(text_table(rows))
    print(f"\nnot measured: {meta['not_measured'] or 'none'}")
    print(f"load average before {' '.join(machine['loadavg_before'])}, after {' '.join(meta['loadavg_after'])}")
    print(
        f"wrote {plan.out / 'layers.md'}, {plan.out / 'layers.json'}; appended {len(rows)} row(s) to "
        f"{OUT_DIR / 'measurements.jsonl'}"
    )
    return 0 if any(r.layer == "direct" for r in rows) else 1
