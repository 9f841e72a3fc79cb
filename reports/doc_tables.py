"""The tables `python -m reports docs` writes into docs/: kept rows in, Markdown out (pure, no Docker).

One renderer per generated block. A renderer gets every kept run its block's pattern matched, oldest first, and
only reads the rows: nothing here depends on the clock, the machine or the environment, so the same data always
renders the same text (that is what `python -m reports docs --check` relies on).

Component suites run each scenario once per suite run, so their cells show one value per run: a single number
for one run (or equal runs), `min–max` over several. The failover benchmark repeats each fault N times and
uses the benchmark's own nearest-rank percentiles (reports/aggregate.py).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from reports.aggregate import (
    CPU_HEADER,
    DASH,
    FAULT_HEADER,
    GAP_HEADER,
    SLOW_HEADER,
    STEAL_HEADER,
    STEAL_SPLIT,
    STEP_HEADER,
    aggregate,
    cpu_cells,
    fault_cells,
    gap_cells,
    mark_cells,
    markdown_table,
    percentile,
    row_label,
    slow_cells,
    slow_note,
    steal_cells,
    step_cells,
)
from reports.layers import LayerRow, cells
from reports.measured import Kept

Row = dict[str, Any]


# ---------------------------------------------------------------- cells


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: float, digits: int) -> str:
    return f"{v:,.{digits}f}" if abs(v) >= 10_000 else f"{v:.{digits}f}"


def span(values: Iterable[Any], digits: int = 0, *, scale: float = 1.0, none: str = DASH) -> str:
    """One value per run: `v` when every run gave the same (formatted) value, else `min–max`."""
    nums = [float(v) * scale for v in values if _is_number(v)]
    if not nums:
        return none
    lo, hi = _fmt(min(nums), digits), _fmt(max(nums), digits)
    return lo if lo == hi else f"{lo}{DASH}{hi}"


def total(values: Iterable[Any]) -> str:
    nums = [v for v in values if _is_number(v)]
    return str(int(sum(nums))) if nums else DASH


def get(row: Row, *path: str) -> Any:
    """row[a][b]..., None where a level is missing or not a dict."""
    cur: Any = row
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def groups(rows: Iterable[Row], key: Callable[[Row], str]) -> dict[str, list[Row]]:
    """Rows per key, keys in order of first appearance (the data's order: oldest run first)."""
    out: dict[str, list[Row]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def all_rows(kept: Sequence[Kept], *kinds: str) -> list[Row]:
    return [r for k in kept for r in k.rows if not kinds or r.get("kind") in kinds]


def _short(text: Any, limit: int = 90) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _titled(title: str, table: str) -> list[str]:
    return [f"**{title}**", "", table, ""]


# ---------------------------------------------------------------- validity (a malformed row is bad input)


#: the fields a row of each kind must carry for its table to mean anything (the key a table groups by)
REQUIRED: dict[str, tuple[str, ...]] = {
    "pgbouncer_share": ("fault",),
    "pgbouncer_refusal": ("clients",),
    "pgbouncer_queue": ("clients", "pool_size"),
    "pgbouncer_restart": ("gap_ms",),
    "citus_worker_down": ("fault",),
    "citus_coordinator_down": ("fault",),
    "citus_latency": ("phase", "query"),
    "citus_balance": (),
    "vector_recovery": ("fault",),
    "vector_bench": ("mode",),
    "vector_recall": ("ef_search", "recall"),
    "redis_cut": ("cut",),
    "alert": ("alert",),
    "dr": ("drill",),
    "failover_load": ("load",),
}


def required(row: Row) -> str | None:
    missing = [f for f in REQUIRED.get(str(row.get("kind")), ()) if row.get(f) in (None, "")]
    return f"{row.get('kind')} row without {', '.join(missing)}" if missing else None


def gap_row(row: Row) -> str | None:
    if not isinstance(row.get("fault"), str) or not row["fault"] or not isinstance(row.get("gaps_ms"), dict):
        return f"{row.get('kind')} row without fault or gaps_ms"
    return None


def layer_row(row: Row) -> str | None:
    try:
        LayerRow(**{k: v for k, v in row.items() if k not in ("kind", "at")})
    except TypeError as err:
        return f"layer row does not match reports.layers.LayerRow ({err})"
    return None


# ---------------------------------------------------------------- renderers


def failover(kept: Sequence[Kept]) -> str:
    agg = aggregate(all_rows(kept, "failover"))
    parts = _titled(
        "Write gap per fault × entry point (ms; p50/p95 nearest-rank over the runs)",
        markdown_table(GAP_HEADER, gap_cells(agg)),
    )
    parts += _titled("Recovery and data per fault", markdown_table(FAULT_HEADER, fault_cells(agg)))
    header, rows = mark_cells(agg)
    if rows:
        parts += _titled(
            "Where the gap went (p50 ms after the injection, from the old and new leader's own log lines)",
            markdown_table(header, rows),
        )
    steps = step_cells(agg)
    if steps:
        parts += _titled(
            "Step by step (ms from one logged mark to the next, per run)", markdown_table(STEP_HEADER, steps)
        )
    cpu = cpu_cells(agg)
    if cpu:
        parts += _titled(
            "CPU in the failover window (2 cores; steal: time the hypervisor gave other guests)",
            markdown_table(CPU_HEADER, cpu),
        )
    stolen = steal_cells(agg)
    if stolen:
        parts += _titled(
            f"Worst gap per run (over the entry points) by the steal in its window (split at {STEAL_SPLIT:.0%})",
            markdown_table(STEAL_HEADER, stolen),
        )
    slow = slow_cells(agg)
    if slow:
        parts += _titled(
            "Gaps above their target (slo.yaml targets:), longest first: what the client waited on",
            "\n\n".join(filter(None, [markdown_table(SLOW_HEADER, slow), slow_note(agg)])),
        )
    return "\n".join(parts).rstrip()


def _leader_change(rows: list[Row]) -> str:
    changed = sum(
        1 for r in rows if r.get("leader_after") != r.get("leader_before") or len(r.get("leaders_seen") or []) > 1
    )
    return "none" if not changed else f"{changed} of {len(rows)} runs"


def dcs_outage(kept: Sequence[Kept]) -> str:
    header = (
        "etcd fault",
        "runs",
        "Patroni leader changed",
        "longest write gap ms: HAProxy / multi-host",
        "primary stopped after s",
        "writes resumed after heal s",
        "reads on replicas ok / failed",
        "etcd leaderless s",
        "most primaries at once",
        "lost",
    )
    out = []
    for label, rows in groups(all_rows(kept, "dcs_outage"), row_label).items():
        reads_ok = total(get(r, "reads_during", "ok") for r in rows)
        reads_fail = total(get(r, "reads_during", "fail") for r in rows)
        out.append(
            (
                label,
                str(len(rows)),
                _leader_change(rows),
                f"{span(get(r, 'gaps_ms', 'haproxy') for r in rows)} / "
                f"{span(get(r, 'gaps_ms', 'multihost') for r in rows)}",
                span((r.get("no_primary_after_s") for r in rows), 1, none="never"),
                span((r.get("writes_resumed_after_heal_s") for r in rows), 1),
                f"{reads_ok} / {reads_fail}",
                span((r.get("raft_leaderless_s") for r in rows), 1),
                span(r.get("max_primaries") for r in rows),
                total(r.get("lost") for r in rows),
            )
        )
    return markdown_table(header, out)


def pgbouncer(kept: Sequence[Kept]) -> str:
    rows = all_rows(kept)
    out = []
    for fault, rs in groups([r for r in rows if r.get("kind") == "pgbouncer_share"], lambda r: str(r["fault"])).items():
        out.append(
            (
                f"failover gap, {fault}: HAProxy direct / through PgBouncer",
                str(len(rs)),
                f"{span(r.get('haproxy_gap_ms') for r in rs)} / {span(r.get('pgbouncer_gap_ms') for r in rs)} ms "
                f"(pooler share {span(r.get('share_ms') for r in rs)} ms)",
                f"share ≤ {span(r.get('bound_ms') for r in rs)} ms",
            )
        )
    refusals = [r for r in rows if r.get("kind") == "pgbouncer_refusal"]
    for clients, rs in groups(refusals, lambda r: str(r.get("clients"))).items():
        out.append(
            (
                f"client {int(clients) + 1 if clients.isdigit() else '?'} (max_client_conn = {clients})",
                str(len(rs)),
                f"refused in {span((r.get('refusal_s') for r in rs), scale=1000)} ms: `{_short(rs[-1].get('error'))}`",
                "error names the limit",
            )
        )
    for r in (r for r in rows if r.get("kind") == "pgbouncer_queue"):
        out.append(
            (
                f"{r.get('clients')} concurrent {r.get('hold_s')} s transactions, default_pool_size = "
                f"{r.get('pool_size')}",
                "1",
                f"{r.get('failed')} failed; up to {r.get('max_cl_waiting')} clients waiting; slowest "
                f"{span([r.get('slowest_s')], 1)} s",
                "drains in waves of the pool size",
            )
        )
    restarts = [r for r in rows if r.get("kind") == "pgbouncer_restart"]
    if restarts:
        out.append(
            (
                "`docker restart` under writes",
                str(len(restarts)),
                f"{span(r.get('failed') for r in restarts)} failed writes, gap "
                f"{span(r.get('gap_ms') for r in restarts)} ms",
                f"gap ≤ {span(r.get('bound_ms') for r in restarts)} ms",
            )
        )
    return markdown_table(("check", "runs", "measured", "bound"), out)


def citus(kept: Sequence[Kept]) -> str:
    rows = all_rows(kept)
    parts: list[str] = []
    worker = groups([r for r in rows if r.get("kind") == "citus_worker_down"], lambda r: str(r.get("fault")))
    parts += _titled(
        "Worker down (worker-2)",
        markdown_table(
            (
                "fault",
                "runs",
                "multi-shard query fails after ms",
                "error (latest run)",
                "worker-1 router queries failed / p95 ms",
                "back after heal s",
            ),
            [
                (
                    fault,
                    str(len(rs)),
                    span((r.get("multi_shard_error_ms") for r in rs), 1),
                    f"`{_short(rs[-1].get('multi_shard_error'))}`",
                    f"{total(get(r, 'healthy_router', 'failed') for r in rs)} / "
                    f"{span((get(r, 'healthy_router', 'p95_ms') for r in rs), 1)}",
                    span((r.get("recovered_s") for r in rs), 2),
                )
                for fault, rs in worker.items()
            ],
        ),
    )
    coord = groups([r for r in rows if r.get("kind") == "citus_coordinator_down"], lambda r: str(r.get("fault")))
    parts += _titled(
        "Coordinator down: a worker with synced metadata answers",
        markdown_table(
            ("fault", "runs", "answered by", "multi-shard count ms", "co-located join ms", "back after heal s"),
            [
                (
                    fault,
                    str(len(rs)),
                    str(rs[-1].get("via")),
                    span((r.get("count_ms") for r in rs), 1),
                    span((r.get("join_ms") for r in rs), 1),
                    span((r.get("recovered_s") for r in rs), 2),
                )
                for fault, rs in coord.items()
            ],
        ),
    )
    lat = groups(
        [r for r in rows if r.get("kind") == "citus_latency"], lambda r: f"{r.get('phase')} | {r.get('query')}"
    )
    parts += _titled(
        "Latency toxic on coordinator → worker-2",
        markdown_table(
            ("phase", "query", "toxic ms", "runs", "samples", "failed", "p50 ms", "p95 ms", "max ms"),
            [
                (
                    str(rs[0].get("phase")),
                    str(rs[0].get("query")),
                    span(r.get("toxic_ms") for r in rs),
                    str(len(rs)),
                    total(r.get("n") for r in rs),
                    total(r.get("failed") for r in rs),
                    span((r.get("p50_ms") for r in rs), 1),
                    span((r.get("p95_ms") for r in rs), 1),
                    span((r.get("max_ms") for r in rs), 1),
                )
                for rs in lat.values()
            ],
        ),
    )
    return "\n".join(parts).rstrip()


def vector_recovery(kept: Sequence[Kept]) -> str:
    out = []
    for fault, rs in groups(all_rows(kept, "vector_recovery"), lambda r: str(r.get("fault"))).items():
        out.append(
            (
                fault,
                str(len(rs)),
                span((r.get("searches_back_s") for r in rs), 1),
                ", ".join(f"{r.get('recall_before', 0):.3f} → {r.get('recall_after', 0):.3f}" for r in rs),
                span(r.get("rows") for r in rs),
                f"{sum(1 for r in rs if r.get('fingerprint_unchanged'))} of {len(rs)}",
            )
        )
    return markdown_table(
        (
            "fault",
            "runs",
            "searches answered again after s",
            "recall@10 before → after (each run)",
            "rows",
            "fingerprint unchanged",
        ),
        out,
    )


def vector_bench(kept: Sequence[Kept]) -> str:
    parts: list[str] = []
    bench = []
    for k in kept:
        for r in k.rows:
            if r.get("kind") != "vector_bench":
                continue
            bench.append(
                (
                    str(r.get("mode")),
                    k.started[:16].replace("T", " "),
                    str(r.get("n")),
                    *(span([r.get(f)], 2) for f in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
                    span([r.get("ops_per_s")]),
                    f"{'yes' if r.get('meets_claim_p95') else 'no'} (< {span([r.get('claim_ms')], 1)} ms)",
                )
            )
    parts += _titled(
        "Search latency (one client, round trip on the client)",
        markdown_table(
            ("mode", "run", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "ops/s", "p95 within the claim"), bench
        ),
    )
    recall = []
    for ef, rs in groups(all_rows(kept, "vector_recall"), lambda r: str(r.get("ef_search"))).items():
        values = [float(r["recall"]) for r in rs if _is_number(r.get("recall"))]
        recall.append(
            (
                ef,
                str(len(values)),
                f"{min(values):.3f}" if values else DASH,
                f"{statistics.median(values):.3f}" if values else DASH,
                f"{max(values):.3f}" if values else DASH,
                span((r.get("worst") for r in rs), 2),
            )
        )
    parts += _titled(
        "Recall@10 per hnsw.ef_search over the builds measured (each REINDEX is a new graph)",
        markdown_table(("hnsw.ef_search", "builds", "min", "median", "max", "worst single query"), recall),
    )
    return "\n".join(parts).rstrip()


def redis_cut(kept: Sequence[Kept]) -> str:
    out = []
    for cut, rs in groups(all_rows(kept, "redis_cut"), lambda r: str(r.get("cut"))).items():
        out.append(
            (
                f"`{cut}`",
                str(len(rs)),
                total(r.get("n") for r in rs),
                total(r.get("failed") for r in rs),
                f"{span((r.get('p50_ms') for r in rs), 1)} / {span((r.get('p95_ms') for r in rs), 1)} / "
                f"{span(r.get('max_ms') for r in rs)}",
                f"{total(r.get('fallbacks') for r in rs)} + {total(r.get('bypassed') for r in rs)}",
                span(r.get("bound_ms") for r in rs),
            )
        )
    return markdown_table(
        (
            "cut",
            "runs",
            "reads during the cut",
            "raised to the caller",
            "p50 / p95 / max ms",
            "fallbacks + bypassed",
            "bound ms (max)",
        ),
        out,
    )


def alerts(kept: Sequence[Kept]) -> str:
    def key(r: Row) -> str:
        labels = r.get("labels") if isinstance(r.get("labels"), dict) else {}
        return f"{r.get('alert')}|" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    out = []
    for k, rs in groups(all_rows(kept, "alert"), key).items():
        name, labels = k.split("|", 1)
        out.append(
            (
                name,
                labels,
                str(len(rs)),
                span((r.get("pending_after_s") for r in rs), 1),
                span((r.get("fired_after_s") for r in rs), 1),
                span(r.get("fire_within_s") for r in rs),
                span((r.get("resolved_after_s") for r in rs), 1),
                span(r.get("resolve_within_s") for r in rs),
            )
        )
    return markdown_table(
        (
            "alert",
            "labels",
            "runs",
            "pending after s",
            "fired after s",
            "fire bound s",
            "resolved after s",
            "resolve bound s",
        ),
        out,
    )


def dr(kept: Sequence[Kept]) -> str:
    out = []
    for drill, rs in groups(all_rows(kept, "dr"), lambda r: str(r.get("drill"))).items():
        phases: dict[str, list[Any]] = {}
        for r in rs:
            for name, secs in (r.get("phases") or {}).items():
                phases.setdefault(name, []).append(secs)
        out.append(
            (
                drill,
                str(len(rs)),
                span((r.get("rto_s") for r in rs), 1),
                span((r.get("rpo_s") for r in rs), 1),
                ", ".join(f"{name} {span(v, 1)}" for name, v in phases.items()) or DASH,
            )
        )
    return markdown_table(("drill", "runs", "RTO s", "RPO s", "phases s"), out)


def hosts_side_by_side(kept: Sequence[Kept]) -> str:
    """One host next to three (the failover rows tagged "3 hosts"), only where both were measured."""
    from reports.bench import side_by_side

    text = side_by_side(aggregate(all_rows(kept, "failover")), "3 hosts")
    lines = [ln for ln in text.splitlines()[2:] if ln.startswith("|")]
    measured = [ln for ln in lines[2:] if not ln.rstrip().endswith(f"| {DASH} | {DASH} | 0 | {DASH} |")]
    if not measured:
        return "_No fault measured on both one and three hosts in the kept runs._"
    return "\n".join(lines[:2] + measured)


SOFT_FAULTS = ("switchover", "graceful_stop", "postmaster_crash")
LOADED = "load 50%"
FIRST = "first after bootstrap"


def _p(g: Any) -> str:
    if g is None or g.gap.p95 is None:
        return DASH
    return f"{g.gap.p50:.0f} / {g.gap.p95:.0f} ({g.gap.n})"


def _met(g: Any, bound: float | None) -> str:
    if g is None or g.gap.p95 is None or bound is None:
        return DASH
    return "met" if g.gap.p95 <= bound else "**missed**"


def _first(g: Any) -> str:
    """One value per kept run of the first failover after bootstrap: the value, or p50–max over several (with two
    runs, nearest-rank p50 is the lower one)."""
    return span([g.gap.p50, g.gap.max] if g is not None else [])


def soft_headline(kept: Sequence[Kept]) -> str:
    """The README's failover numbers: each soft fault x entry point under 50 % open-loop load first, idle and the
    first failover after bootstrap beside it, each p95 against the project's target (slo.yaml `targets:`). Only
    runs with stock settings (one host, asynchronous, the stock member probe) count; other variants are other
    populations (docs/measurements.md has them all)."""
    from chaos.checkers.slo import target

    agg = aggregate(all_rows(kept, "failover"))
    by = {(g.fault, g.entry_point): g for g in agg.gaps}
    eps = list(dict.fromkeys(g.entry_point for g in agg.gaps))  # the aggregate's own entry-point order
    out = []
    for fault in SOFT_FAULTS:
        t_load, t_idle = target(fault, loaded=True), target(fault, loaded=False)
        for ep in eps:
            loaded, idle = by.get((f"{fault} [{LOADED}]", ep)), by.get((fault, ep))
            first = by.get((f"{fault} [{FIRST}]", ep))
            first_loaded = by.get((f"{fault} [{FIRST}, {LOADED}]", ep))
            if loaded is None and idle is None:
                continue
            out.append(
                (
                    fault,
                    ep,
                    _p(loaded),
                    _met(loaded, t_load.bound_ms if t_load else None),
                    _p(idle),
                    _met(idle, t_idle.bound_ms if t_idle else None),
                    f"{_first(first)} / {_first(first_loaded)}",
                )
            )
    if not out:
        return "_No soft-fault run in the kept data._"
    lo = target(SOFT_FAULTS[0], loaded=True)
    hi = target(SOFT_FAULTS[0], loaded=False)
    header = (
        "fault",
        "entry point",
        "under 50 % load: p50 / p95 ms (n)",
        f"target p95 ≤ {lo.bound_ms:.0f}" if lo else "target",
        "idle: p50 / p95 ms (n)",
        f"target p95 ≤ {hi.bound_ms:.0f}" if hi else "target",
        "first after bootstrap ms (p50–max of the runs): idle / loaded",
    )
    return markdown_table(header, out)


def txn_distortion(kept: Sequence[Kept]) -> str:
    """The list-append clients' effect on the switchover write gap: per entry point the gaps without and with the
    clients over N pairs (p50 / p95 nearest-rank) and the median of the paired differences (rows of kind
    txn_distortion, one per pair: the two switchovers of one test run, one right after the other)."""
    rows = all_rows(kept, "txn_distortion")
    eps = list(dict.fromkeys(ep for r in rows for ep in (r.get("without_ms") or {})))
    out = []
    for ep in eps:
        without = [v for r in rows if _is_number(v := get(r, "without_ms", ep))]
        with_ = [v for r in rows if _is_number(v := get(r, "with_ms", ep))]
        delta = [v for r in rows if _is_number(v := get(r, "delta_ms", ep))]
        if not delta:
            continue
        pair = f"{percentile(without, 50):.0f} / {percentile(without, 95):.0f}"
        pair_with = f"{percentile(with_, 50):.0f} / {percentile(with_, 95):.0f}"
        slower = sum(1 for d in delta if d > 0)
        out.append(
            (ep, str(len(delta)), pair, pair_with, f"{statistics.median(delta):+.0f}", f"{slower} of {len(delta)}")
        )
    if not out:
        return "_No distortion pair in the kept data._"
    header = ("entry point", "pairs", "without: p50 / p95 ms", "with the clients: p50 / p95 ms",
              "median difference ms", "pairs slower with the clients")  # fmt: skip
    return markdown_table(header, out)


def load_failover(kept: Sequence[Kept]) -> str:
    """Soft faults under open-loop load: what was offered, what the load saw, who used the CPU (rows of kind
    failover_load; their write gaps are the failover table's "load" rows)."""
    out = []
    for k in kept:
        for r in k.rows:
            if r.get("kind") != "failover_load":
                continue
            load = r.get("load") if isinstance(r.get("load"), dict) else {}
            paths = load.get("paths") if isinstance(load.get("paths"), dict) else {}
            cpu = r.get("cpu") if isinstance(r.get("cpu"), dict) else {}
            out.append(
                (
                    str(r.get("at", ""))[:16].replace("T", " "),
                    f"{r.get('fault')} [{r.get('variant')}]",
                    span([load.get("offered_tx_s")]),
                    span([sum(int(p.get("transactions") or 0) for p in paths.values())]),
                    span([sum(int(p.get("restarts") or 0) for p in paths.values())]),
                    span([load.get("generator_cores")], 2),
                    ", ".join(f"{n} {c:.2f}" for n, c in (cpu.get("top") or [])[:3]) or DASH,
                )
            )
    return markdown_table(
        ("run", "fault", "offered tx/s", "transactions", "load restarts", "generator cores", "CPU while failing over"),
        out,
    )


def _layer(row: Row) -> LayerRow:
    return LayerRow(**{k: v for k, v in row.items() if k not in ("kind", "at")})


def _layer_key(r: LayerRow) -> tuple[str, str, str]:
    return (r.engine, r.workload, r.layer)


def layers(kept: Sequence[Kept]) -> str:
    """The newest run's full table, then ops/s of every kept run side by side (does a run reproduce?)."""
    newest = kept[-1]
    rows = [_layer(r) for r in newest.rows]
    header = ("engine", "workload", "entry point", "ops/s (× direct)", "p50 ms (×)", "p95 ms (×)", "p99 ms (×)")
    main = [(*cells(r)[:3], *cells(r)[4:8], cells(r)[8], cells(r)[9]) for r in rows]
    parts = _titled(
        f"Run of {newest.started[:16].replace('T', ' ')} (pgbench: nearest-rank over every transaction; "
        "Locust: its own approximated percentiles, integer ms)",
        markdown_table((*header, "failed", "vs the seed's targets"), main),
    )
    if len(kept) > 1:
        by_run = [{_layer_key(_layer(r)): _layer(r) for r in k.rows} for k in kept]
        keys = list(dict.fromkeys(key for run in by_run for key in run))
        side = []
        for key in keys:
            side.append((*key, *(cells(run[key])[4] if key in run else DASH for run in by_run)))
        parts += _titled(
            "ops/s (× direct) of every kept run",
            markdown_table(
                ("engine", "workload", "entry point", *(k.started[:16].replace("T", " ") for k in kept)), side
            ),
        )
    return "\n".join(parts).rstrip()
