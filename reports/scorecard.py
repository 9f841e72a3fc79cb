"""`python -m reports scorecard`: one run's results as a review scorecard, Markdown plus one self-contained HTML.

Inputs: an allure-results directory (test statuses, timeline PNGs attached by topology/evidence.py) and the
measurement files the suites append to (topology/evidence.py record_measurement). Output in --out:

* scorecard.md (+ img/*.png next to it) and scorecard.html (CSS inline, every image inlined as base64);
* with the Allure command-line tool installed, `allure generate` into <out>/allure-report, keeping the
  previous report's history (copied into the results' history/ first, as Allure expects); without it the
  command says so and still writes the scorecard.

Tables: tests, SLO (fault x entry point: p50/p95 gap, bound, physical floor, pass/fail), data integrity
(lost / duplicate / split brain per scenario), DR RTO/RPO, benchmarks (per-layer, chaos under load,
vector), then the timeline pictures. A missing input shows as a sentence saying so, never as an empty table.

Exit codes: 0 written, 2 an input could not be read.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.checkers.slo import probe_of_variant
from reports.aggregate import DASH, FAULT_ORDER, Aggregate, aggregate, row_label, sort_key
from reports.jsonl import json_objects
from reports.targets import MIN_KEPT_RUNS, add_against_argument, against_files, kept_aggregate, kept_verdict

#: measurement kinds that carry a write gap per entry point and the data checkers' verdicts
GAP_KINDS = ("failover", "dcs_outage")
DR_KIND = "dr"
LAYER_KIND = "layer_bench"
LOAD_KIND = "failover_load"
VECTOR_KIND = "vector_bench"
TXN_KIND = "consistency"

# Physical floors (ms) of the write gap per fault: what the design leaves no way around, never a copy of the bound.
# Hard faults: nobody releases the key, so it runs out `ttl` after its last renewal, which was up to loop_wait
# before the fault: ttl - loop_wait; where the old leader cannot answer (isolated, frozen), the candidate also waits
# out its member probe of it (`probe`); libpq at a frozen host also waits out its 2 s connect_timeout there.
# Soft faults: the whole hand-over as the nodes logged it (chaos.checkers.phases marks, p50 over the runs), from the
# stop request (or Patroni seeing the crash) to the new primary accepting writes. Every step in it is the design's:
# the shutdown checkpoint and the push of its segment, Patroni's check of the stopped cluster before it releases the
# key, the candidate's lock and promotion (docs/findings.md). What a gap has beyond it is the routers' and the
# client's: "p50 - floor" is their share.
LEASE_FLOOR = "ttl-loop"
LEASE_PROBE_FLOOR = "ttl-loop+probe"
FLOORS: dict[str, Any] = {
    "hard_kill": LEASE_FLOOR,
    "host_crash": LEASE_FLOOR,
    "isolation": LEASE_PROBE_FLOOR,
    "leader_cut_from_etcd": LEASE_PROBE_FLOOR,
    "host_partition": LEASE_PROBE_FLOOR,
    "freeze": {"*": LEASE_PROBE_FLOOR, "multihost": "ttl-loop+probe+2000"},
    "host_freeze": {"*": LEASE_PROBE_FLOOR, "multihost": "ttl-loop+probe+2000"},
    # no leader change: writes never have to stop
    "replica_loss": 0,
    "haproxy_host_crash": 0,
    "etcd_member_stopped": 0,
    "etcd_member_isolated": 0,
    "etcd_minority_split": 0,
    "etcd_client_member_isolated": 0,
    "etcd_leader_killed": 0,
    "quorum_loss_failsafe": 0,
}
SOFT_FAULTS = ("switchover", "graceful_stop", "postmaster_crash", "double_failover", "rolling_restart")
FLOOR_NOTES = {
    LEASE_FLOOR: "the lease runs out ttl after its last renewal (up to loop_wait before the fault)",
    LEASE_PROBE_FLOOR: "the lease after its last renewal + the candidate's probe of the unreachable leader",
    "ttl-loop+probe+2000": "the lease + the probe + libpq's 2 s connect_timeout at the frozen host",
    0: "no leader change",
}
SOFT_NOTE = (
    "the hand-over as the nodes logged it, stop requested (or crash seen) -> new primary accepting writes (p50 over "
    "the runs): shutdown, Patroni's release of the key, lock and promotion; p50 - floor = the routers' and the "
    "client's share (for a crash, also the time until Patroni saw it)"
)


# ---------------------------------------------------------------- inputs


@dataclass
class Measurements:
    rows: list[dict[str, Any]] = field(default_factory=list)
    malformed: int = 0
    files: list[str] = field(default_factory=list)

    def kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("kind") in kinds]


def load_measurements(paths: Sequence[Path]) -> Measurements:
    """Every JSON-lines row of every file (a missing file raises: a typo must not read as 'no data')."""
    out = Measurements()
    for p in paths:
        with open(p, encoding="utf-8", errors="replace") as fh:
            for row in json_objects(fh):
                if row is None:
                    out.malformed += 1
                else:
                    out.rows.append(row)
        out.files.append(str(p))
    return out


@dataclass
class TestResult:
    name: str
    full_name: str
    status: str
    duration_s: float | None
    message: str
    stop: float
    images: list[tuple[str, Path]]  # (attachment name, file)


def _attachments(node: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield from node.get("attachments") or []
    for step in node.get("steps") or []:
        yield from _attachments(step)


def load_allure(results: Path) -> list[TestResult]:
    """The test results of an allure-results directory; a test retried/re-run keeps its latest result only."""
    latest: dict[str, TestResult] = {}
    for f in sorted(results.glob("*-result.json")):
        try:
            data = json.loads(f.read_text(errors="replace"))
        except ValueError:
            continue
        images = [
            (a.get("name", ""), results / a["source"])
            for a in _attachments(data)
            if a.get("type") == "image/png" and a.get("source") and (results / a["source"]).exists()
        ]
        start, stop = data.get("start"), data.get("stop") or 0
        t = TestResult(
            data.get("name", f.stem),
            data.get("fullName", data.get("name", f.stem)),
            data.get("status", "unknown"),
            (stop - start) / 1000 if start and stop else None,
            ((data.get("statusDetails") or {}).get("message") or "").strip(),
            stop,
            images,
        )
        key = data.get("historyId") or t.full_name
        if key not in latest or latest[key].stop <= t.stop:
            latest[key] = t
    return sorted(latest.values(), key=lambda t: t.stop)


# ---------------------------------------------------------------- tables (cells are strings)


@dataclass
class Table:
    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    empty: str  # sentence shown instead of an empty table
    note: str = ""
    status_col: int | None = None  # column whose PASS/FAIL cell is coloured in HTML
    short: str = ""  # navigation label


def _ms(v: Any) -> str:
    return DASH if not isinstance(v, (int, float)) or isinstance(v, bool) else f"{v:.0f}"


def _resolve_floor(fault: str, ep: str, ttl_s: int, stats: Any = None) -> tuple[float | None, str]:
    base = fault.split(" [", 1)[0]
    if base in SOFT_FAULTS:
        return _soft_floor(stats), SOFT_NOTE
    spec = FLOORS.get(base)
    if isinstance(spec, dict):
        spec = spec.get(ep, spec.get("*"))
    if spec is None:
        return None, "not derived"
    if isinstance(spec, str):
        from chaos.checkers.slo import loop_wait_seconds

        probe = probe_of_variant(fault)
        extra = float(spec.rsplit("+", 1)[1]) if spec.count("+") == 2 else 0.0
        value = (ttl_s - loop_wait_seconds()) * 1000 + (probe if "probe" in spec else 0) + extra
        return value, f"{spec} = {value:.0f} ms (probe {probe} ms): {FLOOR_NOTES.get(spec, '')}"
    return float(spec), FLOOR_NOTES.get(spec, "")


def _soft_floor(stats: Any) -> float | None:
    """The p50 over a fault's runs of each run's hand-over (reports.aggregate: stop requested, or the crash seen,
    -> accepting writes, from the phase marks)."""
    return stats.handover.p50 if stats is not None and stats.handover.n else None


def _ttl_of(rows: list[dict[str, Any]]) -> int:
    from chaos.checkers.slo import ttl_seconds

    seen = [r.get("ttl_s") for r in rows if isinstance(r.get("ttl_s"), (int, float))]
    return int(seen[0]) if seen else ttl_seconds()


def slo_table(agg: Aggregate, ttl_s: int, kept: Aggregate | None = None, kept_files: Sequence[str] = ()) -> Table:
    from chaos.checkers.slo import target

    rows = []
    for g in agg.gaps:
        floor, _floor_note = _resolve_floor(g.fault, g.entry_point, ttl_s, agg.fault(g.fault))
        verdict = "not judged" if g.pass_rate is None else "PASS" if g.within == g.judged else "FAIL"
        bound = DASH if not g.slo_ms else "/".join(_ms(s) for s in g.slo_ms)
        gap_vs_floor = DASH if floor is None or g.gap.p50 is None else f"{g.gap.p50 - floor:+.0f}"
        t = target(g.fault, loaded="load " in g.fault)
        met = DASH if t is None or g.gap.p95 is None else ("met" if g.gap.p95 <= t.bound_ms else "MISSED")
        verdict_vs_kept, k = kept_verdict(g, kept)
        vs_kept = (
            DASH if k is None or verdict_vs_kept == "not compared" else f"{verdict_vs_kept} (kept p95 {_ms(k.p95)})"
        )
        rows.append(
            (
                g.fault,
                g.entry_point,
                str(g.n),
                _ms(g.gap.p50),
                _ms(g.gap.p95),
                _ms(g.gap.max),
                bound,
                _ms(t.bound_ms) if t is not None else DASH,
                met,
                vs_kept,
                _ms(floor) if floor is not None else DASH,
                gap_vs_floor,
                f"{g.within}/{g.judged}" if g.judged else DASH,
                verdict,
            )
        )
    by_note: dict[str, list[str]] = {}  # one note per kind of floor, naming every row it applies to
    for f in sorted({g.fault for g in agg.gaps}, key=lambda f: sort_key(f, FAULT_ORDER)):
        by_note.setdefault(_resolve_floor(f, "*", ttl_s, agg.fault(f))[1], []).append(f)
    notes = [f"{', '.join(faults)}: {note}" for note, faults in by_note.items()]
    return Table(
        "SLO: longest write gap per fault × entry point",
        (
            "fault",
            "entry point",
            "runs",
            "p50 ms",
            "p95 ms",
            "max ms",
            "bound ms",
            "target ms",
            "p95 vs target",
            "p50 vs kept bench",
            "physical floor ms",
            "p50 − floor ms",
            "within bound",
            "verdict",
        ),
        rows,
        "no failover measurements in this run",
        status_col=13,
        short="SLO",
        note=(
            f"Gap = longest pause between acknowledged writes after the fault (chaos/checkers/writes.py). Bound "
            f"= the seed's claim, from suites/failover/slo.yaml (ttl = {ttl_s} s): what the tests assert; FAIL = at "
            f"least one run above it (or with fewer than 2 acknowledged writes). Target = the project's own goal "
            f"(slo.yaml targets:, idle or under load by the row's settings), judged on the p95: MISSED shows a "
            f"regression while the bound may stay green; a target this machine misses already cannot, so each "
            f"p50 is also compared with the kept benchmark ({', '.join(kept_files) or 'none given'}): REGRESSED "
            f"when it is above the kept p95 of the same fault, entry point and settings (kept n >= "
            f"{MIN_KEPT_RUNS}; reports/targets.py). Floor = what the design leaves no way around (below), "
            f"not a copy of the bound. 'not judged' = no bound (e.g. quorum loss without failsafe, where writes "
            f"must stop). Percentiles nearest-rank."
            "\n\nFloors: " + "; ".join(notes)
        ),
    )


#: Faults whose tests accept losing acknowledged writes up to Patroni's maximum_lag_on_failover (asynchronous
#: replication: the old leader's last writes may never reach the new one); see assert_failover_ok(allow_loss=)
LOSS_ALLOWED = ("postmaster_crash", "hard_kill", "isolation", "leader_cut_from_etcd")
#: WAL bytes of one probe write (suites/failover/conftest.py WAL_BYTES_PER_PROBE_WRITE)
WAL_BYTES_PER_PROBE_WRITE = 354


def async_loss_bound() -> int:
    """Probe writes that maximum_lag_on_failover (DPG_MAXIMUM_LAG_ON_FAILOVER, default 1 MiB) may lose."""
    import os

    return int(os.environ.get("DPG_MAXIMUM_LAG_ON_FAILOVER", "1048576")) // WAL_BYTES_PER_PROBE_WRITE


def integrity_table(agg: Aggregate, rows: list[dict[str, Any]]) -> Table:
    acked: dict[str, int] = {}
    worst_loss: dict[str, int] = {}
    loss_allowed: set[str] = set()  # labels (fault [variant]) whose runs replicated asynchronously
    for r in rows:
        label = row_label(r)
        if r["fault"] in LOSS_ALLOWED and "synchronous_mode" not in str(r.get("variant") or ""):
            loss_allowed.add(label)
        if isinstance(r.get("acknowledged"), int):
            acked[label] = acked.get(label, 0) + r["acknowledged"]
        if isinstance(r.get("lost"), int):
            worst_loss[label] = max(worst_loss.get(label, 0), r["lost"])
    bound = async_loss_bound()
    out = []
    for f in agg.faults:
        if f.unexpected or f.duplicates or f.split_brain:
            verdict = "FAIL"
        elif f.lost:
            verdict = "LOSS ≤ BOUND" if f.fault in loss_allowed and worst_loss.get(f.fault, 0) <= bound else "FAIL"
        else:
            verdict = "PASS"
        out.append(
            (
                f.fault,
                str(f.runs),
                str(acked.get(f.fault, DASH)),
                str(f.lost),
                str(f.unexpected),
                str(f.duplicates),
                f"{f.split_brain} in {f.split_brain_runs} run(s)" if f.split_brain else "0",
                verdict,
            )
        )
    return Table(
        "Data integrity per scenario",
        ("scenario", "runs", "acknowledged writes", "lost", "unexpected", "duplicates", "split brain", "verdict"),
        out,
        "no scenario with a data check in this run",
        status_col=7,
        short="Data integrity",
        note="Lost = acknowledged but missing from the final read; unexpected = read but never attempted; "
        "split brain = two servers acknowledging on overlapping timelines (chaos/checkers/writes.py). "
        f"LOSS ≤ BOUND: asynchronous replication lets {', '.join(LOSS_ALLOWED)} lose up to Patroni's "
        f"maximum_lag_on_failover ({bound} probe writes per run), as their tests allow; any loss "
        "elsewhere, or above it, is FAIL.",
    )


def _first(row: dict[str, Any], *names: str) -> Any:
    return next((row[n] for n in names if row.get(n) is not None), None)


def _num_s(v: Any) -> str:
    return DASH if not isinstance(v, (int, float)) or isinstance(v, bool) else f"{v:.1f}"


def dr_table(rows: list[dict[str, Any]]) -> Table:
    out = []
    for r in rows:
        rto, rpo = r.get("rto_s"), r.get("rpo_s")
        rto_b, rpo_b = (
            _first(r, "rto_bound_s", "rto_target_s", "rto_slo_s"),
            _first(r, "rpo_bound_s", "rpo_target_s", "rpo_slo_s"),
        )
        verdicts = []
        for v, b in ((rto, rto_b), (rpo, rpo_b)):
            if isinstance(v, (int, float)) and isinstance(b, (int, float)):
                verdicts.append(v <= b)
        ok = r.get("passed", r.get("ok"))
        verdict = (
            ("PASS" if all(verdicts) else "FAIL") if verdicts else (DASH if ok is None else ("PASS" if ok else "FAIL"))
        )
        out.append(
            (
                str(_first(r, "drill", "scenario", "name", "fault") or "?"),
                _num_s(rto),
                _num_s(rto_b),
                _num_s(rpo),
                _num_s(rpo_b),
                str(_first(r, "method", "detail", "note") or ""),
                verdict,
            )
        )
    return Table(
        "Disaster recovery: RTO / RPO",
        ("drill", "RTO s", "RTO bound s", "RPO s", "RPO bound s", "how", "verdict"),
        out,
        "no DR drill in this run",
        status_col=6,
        short="DR RTO/RPO",
    )


def layer_table(rows: list[dict[str, Any]]) -> Table:
    from reports.layers import HEADER, LayerRow, cells

    known = set(LayerRow.__dataclass_fields__)
    out = [cells(LayerRow(**{k: v for k, v in r.items() if k in known})) for r in rows]
    return Table(
        "Benchmark: ops/s and latency per entry point (ratio to direct PostgreSQL)",
        HEADER,
        out,
        "no per-layer benchmark in this run (python -m reports layers)",
        short="Per-layer benchmark",
        note="Seed targets: read > 10k ops/s, write > 5k ops/s, p50 < 10 ms, p95 < 50 ms (✓ met, ✗ not). "
        "Direct = the Patroni leader's own port; vector search runs on the vector DB, which has no "
        "router in front (no ratio). pgbench percentiles: nearest-rank over every transaction; Locust's "
        "are its approximated percentiles.",
    )


def _load_cells(r: dict[str, Any]) -> tuple[str, str, str, str, str, str]:
    """offered tx/s, transactions, failed, restarts (summed over the paths), generator cores, top CPU users."""
    load = r.get("load") if isinstance(r.get("load"), dict) else {}
    paths = load.get("paths") if isinstance(load.get("paths"), dict) else {}
    total = {k: sum(int(p.get(k) or 0) for p in paths.values()) for k in ("transactions", "failed", "restarts")}
    cpu = r.get("cpu") if isinstance(r.get("cpu"), dict) else {}
    top = ", ".join(f"{name} {cores:.2f}" for name, cores in (cpu.get("top") or [])[:3]) or DASH
    cores = load.get("generator_cores")
    return (
        _ms(load.get("offered_tx_s")),
        str(total["transactions"]),
        str(total["failed"]),
        str(total["restarts"]),
        DASH if cores is None else f"{cores:.2f}",
        top,
    )


def load_table(rows: list[dict[str, Any]]) -> Table:
    out = [(str(r.get("fault", "?")), str(r.get("variant") or DASH), *_load_cells(r)) for r in rows]
    return Table(
        "Chaos under load",
        (
            "fault",
            "settings",
            "offered tx/s",
            "transactions",
            "failed",
            "load restarts",
            "generator cores",
            "CPU while failing over (cores)",
        ),
        out,
        "no chaos-under-load run in this run",
        short="Chaos under load",
        note="Open-loop 80/20 load (pgbench --rate) through every write path at once, at a share of the capacity "
        "the run measured first (chaos/clients/load/openloop.py); its write gaps are the 'load' rows of the SLO "
        "table. Load restarts = a pgbench whose connections a failover broke, started again 100 ms later. CPU: "
        "each container's cores from its cgroup counters, injection to writes flowing again "
        "(suites/failover/test_under_load.py, python -m reports bench --load).",
    )


def vector_table(rows: list[dict[str, Any]]) -> Table:
    out = [
        (
            str(r.get("mode")),
            str(r.get("n")),
            f"{r.get('p50_ms', 0):.2f}",
            f"{r.get('p95_ms', 0):.2f}",
            f"{r.get('p99_ms', 0):.2f}",
            f"{r.get('ops_per_s', 0):.0f}",
            "PASS" if r.get("meets_claim_p95") else "FAIL",
        )
        for r in rows
    ]
    return Table(
        "Benchmark: vector search (python -m reports vector-bench)",
        ("mode", "n", "p50 ms", "p95 ms", "p99 ms", "ops/s", "p95 within claim"),
        out,
        "no vector benchmark in this run",
        status_col=6,
        short="Vector search",
    )


def _anomaly_cell(anomalies: Any) -> str:
    if not isinstance(anomalies, dict) or not anomalies:
        return "none"
    return ", ".join(f"{k} ×{v}" for k, v in sorted(anomalies.items()))


def consistency_table(rows: list[dict[str, Any]]) -> Table:
    """One row per list-append run and path (suites/consistency): completions, anomalies by type, strongest model."""
    out = []
    for r in rows:
        strongest = r.get("strongest") or []
        cell = " / ".join(strongest) if strongest else "none of the main models"
        if r.get("path") == "all" and r.get("rw_strongest") and r.get("lost"):
            cell += f" (RW, lost tail forgiven: {' / '.join(r['rw_strongest'])})"
        out.append(
            (
                str(r.get("scenario", "?")) + (f" [{r['variant']}]" if r.get("variant") else ""),
                str(r.get("path", "?")),
                str(r.get("isolation", "?")),
                str(r.get("ok", 0)),
                str(r.get("fail", 0)),
                str(r.get("info", 0)),
                _anomaly_cell(r.get("anomalies")),
                str(r["lost"]) if r.get("path") == "all" else DASH,
                _ms(r["stale_max_s"] * 1000) if isinstance(r.get("stale_max_s"), int | float) else DASH,
                cell,
                {True: "valid", False: "invalid", "unknown": "unknown"}.get(r.get("valid"), "?"),
            )
        )
    return Table(
        "Consistency: list-append transactions per path (Elle-style checker)",
        (
            "scenario",
            "path",
            "isolation",
            "ok",
            "fail",
            "info",
            "anomalies",
            "lost appends",
            "oldest read (ms)",
            "strongest model holding",
            "strict-serializable",
        ),
        out,
        "no list-append run in this run",
        short="Consistency",
        note="suites/consistency: Jepsen's list-append workload through every path, checked against "
        "strict-serializable (every main model's anomalies). A path's row is its view: its own transactions and "
        "everybody's appends. 'all' is the whole history; lost appends = acknowledged appends the final reads miss; "
        "oldest read = how long before the read began the oldest acknowledged append it missed had completed. "
        "RO paths run REPEATABLE READ (a standby refuses SERIALIZABLE). What the models mean: docs/consistency.md.",
    )


def _status(t: TestResult) -> str:
    """PASSED / FAILED / BROKEN in capitals; an expected failure (allure records xfail as skipped) as XFAIL."""
    if t.status == "skipped" and t.message.startswith("XFAIL"):
        return "XFAIL"
    return t.status.upper() if t.status in ("passed", "failed", "broken") else t.status


def tests_table(tests: list[TestResult]) -> Table:
    counts: dict[str, int] = {}
    for t in tests:
        counts[_status(t).lower()] = counts.get(_status(t).lower(), 0) + 1
    rows = [
        (
            t.name,
            _status(t),
            DASH if t.duration_s is None else f"{t.duration_s:.0f}",
            (t.message.splitlines()[0][:180] if t.message else ""),
        )
        for t in tests
    ]
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return Table(
        "Tests",
        ("test", "status", "s", "message"),
        rows,
        "no allure results",
        note=f"{len(tests)} test(s): {summary}." if tests else "",
        status_col=1,
    )


# ---------------------------------------------------------------- the scorecard


@dataclass
class Scorecard:
    title: str
    tables: list[Table]
    images: list[tuple[str, str, Path]]  # (test, attachment name, png)
    inputs: list[str]
    generated: str


def _with_bounds(row: dict[str, Any]) -> dict[str, Any]:
    """A row without recorded bounds (dcs_outage rows) is judged against the SLO file of this checkout."""
    if isinstance(row.get("slo_ms"), dict):
        return row
    from chaos.checkers.slo import load
    from topology.errors import TopologyError

    try:
        slos = load()
    except TopologyError:
        return row
    bounds = {ep: slos[(row["fault"], ep)].bound_ms for ep in row["gaps_ms"] if (row["fault"], ep) in slos}
    return row | {"slo_ms": bounds} if bounds else row


def build(
    tests: list[TestResult],
    m: Measurements,
    *,
    title: str,
    inputs: list[str],
    kept: Aggregate | None = None,
    kept_files: Sequence[str] = (),
) -> Scorecard:
    gap_rows = [r for r in m.kind(*GAP_KINDS) if isinstance(r.get("fault"), str) and isinstance(r.get("gaps_ms"), dict)]
    agg = aggregate([_with_bounds(r) for r in gap_rows])
    tables = [
        tests_table(tests),
        slo_table(agg, _ttl_of(gap_rows), kept, kept_files),
        integrity_table(agg, gap_rows),
        dr_table(m.kind(DR_KIND)),
        layer_table(m.kind(LAYER_KIND)),
        load_table(m.kind(LOAD_KIND)),
        vector_table(m.kind(VECTOR_KIND)),
        consistency_table(m.kind(TXN_KIND)),
    ]
    images = [(t.name, name, path) for t in tests for name, path in t.images]
    return Scorecard(title, tables, images, inputs, time.strftime("%Y-%m-%d %H:%M:%S %Z"))


def _md_table(t: Table) -> str:
    parts = [f"## {t.title}", ""]
    if not t.rows:
        parts += [f"_{t.empty}._", ""]
    else:
        parts += ["| " + " | ".join(t.header) + " |", "|" + "|".join("---" for _ in t.header) + "|"]
        parts += ["| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in t.rows]
        parts.append("")
    if t.note:
        parts += [t.note, ""]
    return "\n".join(parts)


def render_markdown(sc: Scorecard, image_names: list[str]) -> str:
    parts = [f"# {sc.title}", "", f"Generated {sc.generated} from: {', '.join(sc.inputs)}.", ""]
    parts += [_md_table(t) for t in sc.tables]
    parts += ["## Timelines", ""]
    if not sc.images:
        parts += ["_no timeline pictures in the allure results._", ""]
    for (test, name, _), file in zip(sc.images, image_names, strict=True):
        parts += [f"### {test}: {name}", "", f"![{name}](img/{file})", ""]
    return "\n".join(parts)


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1400px;
color:#1f2328;padding:0 16px;font-size:14px}
h1{font-size:24px;border-bottom:2px solid #d0d7de;padding-bottom:6px}
h2{font-size:18px;margin-top:28px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:14px;margin:18px 0 6px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;position:sticky;top:0}
tr:nth-child(even) td{background:#fbfcfd}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.nowrap{white-space:nowrap}
td.PASS,td.PASSED{background:#dafbe1!important;color:#116329;font-weight:600}
td.FAIL,td.FAILED,td.BROKEN{background:#ffebe9!important;color:#a40e26;font-weight:600}
td.LOSS{background:#fff8c5!important;color:#7d4e00;font-weight:600}
td.skipped,td.not{color:#57606a}
td.XFAIL{background:#fff8c5!important;color:#7d4e00}
p.note{color:#57606a;max-width:1100px;white-space:pre-line}
p.empty{font-style:italic;color:#57606a}
.meta{color:#57606a}
nav a{margin-right:14px}
figure{margin:10px 0 24px}
figure img{max-width:100%;border:1px solid #d0d7de}
figcaption{color:#57606a;font-size:12px}
"""


def _is_num(cell: str) -> bool:
    c = cell.replace(",", "").replace("×", "").replace("(", "").replace(")", "").replace("/", "").split()
    return bool(c) and all(x.replace(".", "", 1).lstrip("+-−").isdigit() or x == DASH for x in c)


def _html_table(t: Table, anchor: str) -> str:
    e = html.escape
    out = [f'<h2 id="{anchor}">{e(t.title)}</h2>']
    if not t.rows:
        out.append(f'<p class="empty">{e(t.empty)}.</p>')
    else:
        out.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr></thead><tbody>")
        for r in t.rows:
            tds = []
            for i, c in enumerate(r):
                cls = (
                    c.split()[0]
                    if i == t.status_col and c
                    else ("num" if _is_num(c) else "nowrap" if ("✓" in c or "✗" in c) else "")
                )
                tds.append(f'<td class="{e(cls)}">{e(c)}</td>' if cls else f"<td>{e(c)}</td>")
            out.append("<tr>" + "".join(tds) + "</tr>")
        out.append("</tbody></table>")
    if t.note:
        out.append(f'<p class="note">{e(t.note)}</p>')
    return "\n".join(out)


def render_html(sc: Scorecard) -> str:
    e = html.escape
    anchors = [f"t{i}" for i in range(len(sc.tables))]
    nav = "".join(
        f'<a href="#{a}">{e(t.short or t.title.split(":")[0])}</a>' for a, t in zip(anchors, sc.tables, strict=True)
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(sc.title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{e(sc.title)}</h1>",
        f'<p class="meta">Generated {e(sc.generated)} from: {e(", ".join(sc.inputs))}.</p>',
        f'<nav>{nav}<a href="#timelines">Timelines</a></nav>',
    ]
    parts += [_html_table(t, a) for a, t in zip(anchors, sc.tables, strict=True)]
    parts.append('<h2 id="timelines">Timelines</h2>')
    if not sc.images:
        parts.append('<p class="empty">no timeline pictures in the allure results.</p>')
    for test, name, path in sc.images:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(
            f"<figure><figcaption>{e(test)}: {e(name)}</figcaption>"
            f'<img alt="{e(name)}" src="data:image/png;base64,{data}"></figure>'
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write(sc: Scorecard, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    img = out / "img"
    shutil.rmtree(img, ignore_errors=True)
    names = []
    if sc.images:
        img.mkdir()
        for i, (_, name, path) in enumerate(sc.images, start=1):
            safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:60]
            names.append(f"{i:02d}-{safe}.png")
            shutil.copyfile(path, img / names[-1])
    md, page = out / "scorecard.md", out / "scorecard.html"
    md.write_text(render_markdown(sc, names))
    page.write_text(render_html(sc))
    return md, page


# ---------------------------------------------------------------- allure generate


def allure_generate(results: Path, out: Path, *, allure: str | None = None) -> str:
    """Run `allure generate` keeping history; returns a sentence for the console either way."""
    allure = allure or shutil.which("allure")
    if not allure:
        return (
            "allure command-line tool not installed (it needs Java or npm): skipped `allure generate`; "
            "the scorecard is written anyway"
        )
    report = out / "allure-report"
    previous = report / "history"
    if previous.is_dir():  # Allure's trend charts read <results>/history from the previous report
        shutil.copytree(previous, results / "history", dirs_exist_ok=True)
    try:
        proc = subprocess.run(
            [allure, "generate", str(results), "-o", str(report), "--clean"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"allure generate failed: {exc}"
    if proc.returncode != 0:
        return f"allure generate failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-300:]}"
    return f"allure report: {report / 'index.html'} (history kept)"


# ---------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--results",
        type=Path,
        default=Path("allure-results"),
        help="allure-results directory of the run (default allure-results)",
    )
    p.add_argument(
        "--measurements",
        type=Path,
        action="append",
        default=None,
        metavar="FILE",
        help="measurements.jsonl of the run (repeatable; default reports/out/measurements.jsonl)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("reports/out/scorecard"),
        help="output directory (default reports/out/scorecard)",
    )
    add_against_argument(p, what="the SLO table's p50s are compared with")
    p.add_argument("--title", default="dpg-chaos scorecard")
    p.add_argument("--no-allure", action="store_true", help="do not run `allure generate` even if installed")


def run(args: argparse.Namespace) -> int:
    measurements = args.measurements or [Path(__file__).resolve().parent / "out" / "measurements.jsonl"]
    if not args.results.is_dir():
        print(
            f"scorecard: {args.results} is not a directory (run pytest with --alluredir {args.results})",
            file=sys.stderr,
        )
        return 2
    try:
        m = load_measurements(measurements)
    except OSError as err:
        print(f"scorecard: {err}", file=sys.stderr)
        return 2
    against, absent = against_files(args.against)
    if absent:
        print(f"scorecard: no such kept file for --against: {', '.join(absent)}", file=sys.stderr)
        return 2
    tests = load_allure(args.results)
    sc = build(
        tests,
        m,
        title=args.title,
        inputs=[str(args.results), *map(str, measurements)],
        kept=kept_aggregate(against),
        kept_files=[f.name for f in against],
    )
    md, page = write(sc, args.out)
    for t in sc.tables:
        fails = sum(1 for r in t.rows if t.status_col is not None and r[t.status_col] in ("FAIL", "FAILED", "BROKEN"))
        state = t.empty if not t.rows else f"{len(t.rows)} row(s)" + (f", {fails} FAIL" if fails else "")
        print(f"  {t.title}: {state}")
    print(f"  timelines: {len(sc.images)} picture(s); {m.malformed} malformed measurement line(s) ignored")
    print(f"wrote {md} and {page} ({page.stat().st_size // 1024} KiB, self-contained)")
    if not args.no_allure:
        print(allure_generate(args.results, args.out))
    return 0
