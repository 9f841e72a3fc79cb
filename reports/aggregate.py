"""Aggregate failover measurements (reports/out/measurements.jsonl rows of kind "failover") into tables.

Pure functions, no Docker, no pytest: the benchmark (`python -m reports bench`) and `python -m reports table`
both end here, and unit tests feed hand-made rows.

Percentiles use the **nearest-rank** method (value at rank ceil(p/100 * n) of the sorted sample, 1-based):
the result is always a value that was actually measured, which matters with the handful of runs a benchmark
makes (with n <= 20, p95 is the maximum). No interpolation between runs is invented.

A gap of `null` (an entry point that acknowledged fewer than 2 writes after the fault) counts as a run outside
the SLO, as it does in the test's verdict, and is left out of the percentiles; `n` counts every run, so a
`measured` count below `n` shows such runs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaos.checkers.phases import MARK_ORDER, within_failover
from reports.jsonl import json_objects

KIND = "failover"
FAULT_ORDER = (
    "switchover",
    "graceful_stop",
    "postmaster_crash",
    "hard_kill",
    "isolation",
    "freeze",
    "replica_loss",
    "double_failover",
)
ENTRY_POINT_ORDER = ("haproxy", "traefik", "pgbouncer", "multihost")
DASH = "–"


# ---------------------------------------------------------------- reading


@dataclass
class Loaded:
    """Rows of kind "failover" plus how many lines were skipped and why (a silent skip would hide bad data)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    other_kinds: int = 0
    malformed: int = 0
    files: list[str] = field(default_factory=list)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _valid_failover_row(row: dict[str, Any]) -> bool:
    """The minimum the aggregation relies on; everything else is optional and read defensively."""
    return isinstance(row.get("fault"), str) and bool(row["fault"]) and isinstance(row.get("gaps_ms"), dict)


def parse_lines(lines: Iterable[str], into: Loaded | None = None) -> Loaded:
    """Classify JSON lines: failover rows are kept, other kinds and malformed lines are only counted."""
    out = into if into is not None else Loaded()
    for row in json_objects(lines):
        if row is None:
            out.malformed += 1
        elif row.get("kind") != KIND:
            out.other_kinds += 1
        elif _valid_failover_row(row):
            out.rows.append(row)
        else:
            out.malformed += 1
    return out


def load_measurements(paths: Sequence[str | Path]) -> Loaded:
    """Read measurement JSONL files in the given order (a missing file raises: a typo must not read as 'no data')."""
    out = Loaded()
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as fh:
            parse_lines(fh, into=out)
        out.files.append(str(path))
    return out


# ---------------------------------------------------------------- statistics


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (see module docstring); None for an empty sample."""
    if not values:
        return None
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True)
class Spread:
    """p50/p95/max of one sample; n counts the numeric values it was computed from."""

    n: int
    p50: float | None
    p95: float | None
    max: float | None

    @classmethod
    def of(cls, values: Iterable[Any]) -> Spread:
        nums = [float(v) for v in values if _is_number(v)]
        return cls(len(nums), percentile(nums, 50), percentile(nums, 95), max(nums) if nums else None)


def sort_key(name: str, order: Sequence[str]) -> tuple[int, str]:
    """Known names in their fixed order, then the others alphabetically: tables diff cleanly between runs."""
    return (order.index(name), "") if name in order else (len(order), name)


# ---------------------------------------------------------------- grouping


@dataclass(frozen=True)
class GapStats:
    """One fault x entry point: the write-gap distribution and how often it stayed within its SLO."""

    fault: str
    entry_point: str
    n: int  # runs that reported this entry point
    gap: Spread  # over the runs with a numeric gap
    slo_ms: tuple[float, ...]  # distinct bounds seen (more than one if e.g. DPG_TTL changed between runs)
    judged: int  # runs with an SLO to judge against
    within: int  # ... of which the gap was <= the bound

    @property
    def pass_rate(self) -> float | None:
        return self.within / self.judged if self.judged else None


@dataclass(frozen=True)
class FaultStats:
    """One fault across its runs: how long recovery took and what went wrong with the data."""

    fault: str
    runs: int
    leader_elected_s: Spread
    healthy_after_s: Spread
    lost: int
    unexpected: int
    duplicates: int
    split_brain: int  # anomalies summed over runs
    split_brain_runs: int  # runs with at least one anomaly
    marks: dict[str, Spread] = field(default_factory=dict)  # chaos.checkers.phases marks (ms after the injection)
    steps: dict[str, Spread] = field(default_factory=dict)  # "a → b": ms from one logged mark to the next, per run
    host_busy: Spread = field(default_factory=lambda: Spread.of([]))  # share of the cores in the failover window
    steal: Spread = field(default_factory=lambda: Spread.of([]))  # of which the hypervisor gave to other guests
    # each run's worst gap over its entry points, split by the steal in its window: (below STEAL_SPLIT, at/above)
    worst_gap_by_steal: tuple[Spread, Spread] = field(default_factory=lambda: (Spread.of([]), Spread.of([])))
    # each run's hand-over as the nodes logged it: stop requested (or the crash seen) -> new primary accepting writes
    handover: Spread = field(default_factory=lambda: Spread.of([]))


@dataclass(frozen=True)
class SlowGap:
    """One run's gap at one entry point that missed the project's target, with what its client waited on: the
    longest single attempt inside the gap and the failed attempts by error (rows since 2026-12-05 keep them)."""

    fault: str
    entry_point: str
    at: str
    gap_ms: float
    target_ms: float
    slowest_ms: float | None
    slowest: str
    errors: dict[str, int]


@dataclass
class Aggregate:
    gaps: list[GapStats]
    faults: list[FaultStats]
    rows: int
    other_kinds: int = 0
    malformed: int = 0
    slow_gaps: list[SlowGap] = field(default_factory=list)

    def fault(self, name: str) -> FaultStats | None:
        return next((f for f in self.faults if f.fault == name), None)

    def to_dict(self) -> dict[str, Any]:
        gaps = [asdict(g) | {"pass_rate": g.pass_rate} for g in self.gaps]
        return {
            "percentile_method": "nearest-rank",
            "rows": self.rows,
            "other_kinds": self.other_kinds,
            "malformed": self.malformed,
            "gaps": gaps,
            "faults": [asdict(f) for f in self.faults],
        }


def _int(v: Any) -> int:
    """Counts are ints; older rows stored sets as strings, which count as 0 rather than break the table."""
    return int(v) if _is_number(v) else 0


def _gap_stats(fault: str, ep: str, rows: list[dict[str, Any]]) -> GapStats:
    gaps = [r["gaps_ms"].get(ep) for r in rows]
    slos = [r["slo_ms"].get(ep) if isinstance(r.get("slo_ms"), dict) else None for r in rows]
    judged = [(g, s) for g, s in zip(gaps, slos, strict=True) if _is_number(s)]
    within = sum(1 for g, s in judged if _is_number(g) and g <= s)
    distinct = tuple(sorted({float(s) for _, s in judged}))
    return GapStats(fault, ep, len(rows), Spread.of(gaps), distinct, len(judged), within)


def _fault_stats(fault: str, rows: list[dict[str, Any]]) -> FaultStats:
    anomalies = [len(r["split_brain"]) if isinstance(r.get("split_brain"), list) else 0 for r in rows]
    return FaultStats(
        fault=fault,
        runs=len(rows),
        leader_elected_s=Spread.of(r.get("leader_elected_s") for r in rows),
        healthy_after_s=Spread.of(r.get("healthy_after_s") for r in rows),
        lost=sum(_int(r.get("lost")) for r in rows),
        unexpected=sum(_int(r.get("unexpected")) for r in rows),
        duplicates=sum(_int(r.get("duplicates")) for r in rows),
        split_brain=sum(anomalies),
        split_brain_runs=sum(1 for a in anomalies if a),
        marks={m: Spread.of(within_failover(r.get("marks_ms") or {}).get(m) for r in rows) for m in MARK_ORDER},
        steps=_steps(rows),
        host_busy=Spread.of((r.get("cpu") or {}).get("host_busy") for r in rows),
        steal=Spread.of((r.get("cpu") or {}).get("steal") for r in rows),
        worst_gap_by_steal=_worst_gap_by_steal(rows),
        handover=Spread.of(_handover(r) for r in rows),
    )


def _handover(row: dict[str, Any]) -> float | None:
    """One run's stop request (or Patroni seeing the crash) -> the new primary accepting writes, in ms."""
    m = within_failover(row.get("marks_ms") or {})
    start = m.get("stop_requested", m.get("crash_detected"))
    end = m.get("accepting_writes")
    return max(end - start, 0) if start is not None and end is not None else None


STEAL_SPLIT = 0.05  # a window where the hypervisor withheld 5 % of the cores or more counts as "stolen"


def _worst_gap_by_steal(rows: list[dict[str, Any]]) -> tuple[Spread, Spread]:
    """The run's longest write gap over its entry points, in two samples: windows with steal below STEAL_SPLIT
    and the others. Runs without a steal reading (older rows) are in neither."""
    low: list[float] = []
    high: list[float] = []
    for r in rows:
        steal = (r.get("cpu") or {}).get("steal")
        gaps = [g for g in (r.get("gaps_ms") or {}).values() if _is_number(g)]
        if not _is_number(steal) or not gaps:
            continue
        (high if steal >= STEAL_SPLIT else low).append(max(gaps))
    return Spread.of(low), Spread.of(high)


def _steps(rows: list[dict[str, Any]]) -> dict[str, Spread]:
    """Each run's time from one logged mark to the next (in the order they were logged, up to the new leader
    accepting writes), gathered per "a → b" over the runs: which step of the shutdown, the hand-over or the
    promotion took the time, and how much it varies."""
    order = {m: i for i, m in enumerate(MARK_ORDER)}
    per: dict[str, list[float]] = {}
    starts: dict[str, list[float]] = {}  # when each step began, to list the steps in the order they happen
    for r in rows:
        marks = within_failover(r.get("marks_ms") or {})
        seen = sorted((m for m in marks if m in order), key=lambda m: (marks[m], order[m]))
        for a, b in itertools.pairwise(seen):
            per.setdefault(f"{a} → {b}", []).append(marks[b] - marks[a])
            starts.setdefault(f"{a} → {b}", []).append(marks[a])
    keyed = sorted(per, key=lambda k: (percentile(starts[k], 50), order[k.split(" → ")[0]]))
    return {k: Spread.of(per[k]) for k in keyed}


def row_label(row: dict[str, Any]) -> str:
    """The fault, plus the run's non-default cluster settings if any: 'freeze [synchronous_mode]'. Runs of one
    fault under other settings (synchronous_mode, a patched member probe) are other populations, never mixed."""
    variant = row.get("variant")
    return f"{row['fault']} [{variant}]" if isinstance(variant, str) and variant else row["fault"]


def group_by_fault(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows per fault (and settings variant), faults in the table order, each fault's variants after it."""
    groups: dict[str, list[dict[str, Any]]] = {}
    order: dict[str, tuple] = {}
    for r in rows:
        label = row_label(r)
        groups.setdefault(label, []).append(r)
        order[label] = (sort_key(r["fault"], FAULT_ORDER), label)
    return {f: groups[f] for f in sorted(groups, key=order.__getitem__)}


def _slow_gaps(label: str, rows: list[dict[str, Any]]) -> list[SlowGap]:
    """The runs' gaps above the label's target (idle or under load by its settings), longest first."""
    from chaos.checkers.slo import target

    t = target(label, loaded="load " in label)
    if t is None:
        return []
    out = []
    for r in rows:
        for ep, gap in (r.get("gaps_ms") or {}).items():
            if not _is_number(gap) or gap <= t.bound_ms:
                continue
            a = (r.get("gap_attempts") or {}).get(ep) or {}
            slowest = a.get("slowest_ms")
            out.append(
                SlowGap(
                    label,
                    ep,
                    str(r.get("at", "")),
                    float(gap),
                    t.bound_ms,
                    float(slowest) if _is_number(slowest) else None,
                    str(a.get("slowest") or ""),
                    dict(a.get("errors") or {}),
                )
            )
    return sorted(out, key=lambda g: -g.gap_ms)


def aggregate(rows: Sequence[dict[str, Any]], *, other_kinds: int = 0, malformed: int = 0) -> Aggregate:
    """Group valid failover rows by fault x entry point (an entry point counts only in runs that measured it)."""
    gaps, faults, slow = [], [], []
    for fault, frows in group_by_fault(rows).items():
        eps = {ep for r in frows for ep in r["gaps_ms"]}
        for ep in sorted(eps, key=lambda e: sort_key(e, ENTRY_POINT_ORDER)):
            gaps.append(_gap_stats(fault, ep, [r for r in frows if ep in r["gaps_ms"]]))
        faults.append(_fault_stats(fault, frows))
        slow += _slow_gaps(fault, frows)
    return Aggregate(gaps, faults, len(rows), other_kinds, malformed, slow)


def aggregate_loaded(loaded: Loaded) -> Aggregate:
    return aggregate(loaded.rows, other_kinds=loaded.other_kinds, malformed=loaded.malformed)


# ---------------------------------------------------------------- rendering

GAP_HEADER = (
    "fault",
    "entry point",
    "n",
    "p50 ms",
    "p95 ms",
    "max ms",
    "SLO ms",
    "within SLO",
    "healthy again p50/p95 s",
)
FAULT_HEADER = (
    "fault",
    "runs",
    "leader elected p50/p95 s",
    "healthy again p50/p95 s",
    "lost",
    "unexpected",
    "duplicates",
    "split-brain anomalies (runs)",
)


def _ms(v: float | None) -> str:
    return DASH if v is None else f"{v:.0f}"


def _s_pair(s: Spread) -> str:
    return DASH if s.n == 0 else f"{s.p50:.1f} / {s.p95:.1f}"


def _slo(values: tuple[float, ...]) -> str:
    if not values:
        return DASH
    return _ms(values[0]) if len(values) == 1 else f"{_ms(values[0])}{DASH}{_ms(values[-1])}"


def _within(g: GapStats) -> str:
    return DASH if g.pass_rate is None else f"{g.within}/{g.judged} ({g.pass_rate:.0%})"


def _n(g: GapStats) -> str:
    """n, plus how many runs had no numeric gap when some did not (they still count against the SLO)."""
    missing = g.n - g.gap.n
    return str(g.n) if not missing else f"{g.n} ({missing} no gap)"


def gap_cells(agg: Aggregate) -> list[tuple[str, ...]]:
    """One row per fault x entry point, cells already formatted (shared by Markdown and text)."""
    out = []
    for g in agg.gaps:
        f = agg.fault(g.fault)
        healthy = _s_pair(f.healthy_after_s) if f else DASH
        out.append(
            (
                g.fault,
                g.entry_point,
                _n(g),
                _ms(g.gap.p50),
                _ms(g.gap.p95),
                _ms(g.gap.max),
                _slo(g.slo_ms),
                _within(g),
                healthy,
            )
        )
    return out


def fault_cells(agg: Aggregate) -> list[tuple[str, ...]]:
    return [
        (
            f.fault,
            str(f.runs),
            _s_pair(f.leader_elected_s),
            _s_pair(f.healthy_after_s),
            str(f.lost),
            str(f.unexpected),
            str(f.duplicates),
            f"{f.split_brain} ({f.split_brain_runs})",
        )
        for f in agg.faults
    ]


def mark_cells(agg: Aggregate) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Where the gap went: p50 ms after the injection of each mark any run logged (header, rows)."""
    seen = [m for m in MARK_ORDER if any(f.marks.get(m) and f.marks[m].n for f in agg.faults)]
    rows = [
        (
            f.fault,
            str(max((f.marks[m].n for m in seen), default=0)),
            *(_ms(f.marks[m].p50) if f.marks[m].n else DASH for m in seen),
        )
        for f in agg.faults
        if any(f.marks[m].n for m in seen)
    ]
    return ("fault", "runs with marks", *seen), rows


STEP_HEADER = ("fault", "step (mark → next mark)", "runs", "p50 ms", "p95 ms", "max ms")


def step_cells(agg: Aggregate, *, min_runs: int = 3) -> list[tuple[str, ...]]:
    """Where the gap went, step by step: each consecutive pair of marks with its p50/p95 over the runs (pairs seen
    in fewer than `min_runs` runs, where a mark was missing in between, are left out)."""
    return [
        (f.fault, step, str(sp.n), _ms(sp.p50), _ms(sp.p95), _ms(sp.max))
        for f in agg.faults
        for step, sp in f.steps.items()
        if sp.n >= min_runs
    ]


CPU_HEADER = ("fault", "runs", "host busy p50 / p95", "of it steal p50 / p95")


def _share_pair(sp: Spread) -> str:
    return DASH if sp.n == 0 else f"{sp.p50:.0%} / {sp.p95:.0%}"


STEAL_HEADER = (
    "fault",
    f"steal < {STEAL_SPLIT:.0%}: runs",
    "worst gap p50 / p95 ms",
    f"steal ≥ {STEAL_SPLIT:.0%}: runs",
    "worst gap p50 / p95 ms",
)


def steal_cells(agg: Aggregate) -> list[tuple[str, ...]]:
    """Each fault's worst gap per run (over the entry points) with little steal in the window and with much:
    whether the tail is the cluster's or the neighbours'."""
    out = []
    for f in agg.faults:
        low, high = f.worst_gap_by_steal
        if low.n + high.n:
            pair = [f"{_ms(sp.p50)} / {_ms(sp.p95)}" if sp.n else DASH for sp in (low, high)]
            out.append((f.fault, str(low.n), pair[0], str(high.n), pair[1]))
    return out


def cpu_cells(agg: Aggregate) -> list[tuple[str, ...]]:
    """The cores' use in each failover window: all of it (busy) and the part the hypervisor withheld (steal, in
    busy). A run that reads slow while steal was high measured the neighbours, not the cluster."""
    return [
        (f.fault, str(f.host_busy.n), _share_pair(f.host_busy), _share_pair(f.steal))
        for f in agg.faults
        if f.host_busy.n
    ]


SLOW_HEADER = (
    "fault",
    "entry point",
    "measured at",
    "gap ms",
    "target ms",
    "slowest attempt ms",
    "that attempt",
    "failed attempts in the gap",
)
SLOW_ROWS = 20  # the longest gaps listed; the rest are counted under the table


def slow_cells(agg: Aggregate, *, limit: int = SLOW_ROWS) -> list[tuple[str, ...]]:
    """Each gap above its target with what the client waited on. A gap of fast refusals is the cluster's hand-over;
    one attempt that took most of the gap is a connect or statement that hung until a timeout (a router's or
    the client's), which is not the cluster's number."""
    out = []
    for g in agg.slow_gaps[:limit]:
        errors = "; ".join(f"{n}× {e}" for e, n in list(g.errors.items())[:3]) or DASH
        out.append(
            (
                g.fault,
                g.entry_point,
                g.at,
                _ms(g.gap_ms),
                _ms(g.target_ms),
                _ms(g.slowest_ms),
                g.slowest or "not recorded",
                errors,
            )
        )
    return out


def slow_note(agg: Aggregate) -> str:
    """'(N more ...)' under a table of slow_cells when it left rows out, else ''."""
    more = len(agg.slow_gaps) - SLOW_ROWS
    return f"({more} more gap(s) above their target not listed)" if more > 0 else ""


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns: text left, numbers right (the first two columns are names)."""
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def _footer(agg: Aggregate) -> str:
    return (
        f"{agg.rows} failover row(s); ignored {agg.other_kinds} of other kinds, {agg.malformed} malformed. "
        "Percentiles: nearest-rank."
    )


def render_markdown(agg: Aggregate, *, title: str | None = None) -> str:
    """Write-gap table (the one to paste into a review) followed by the per-fault recovery/data table."""
    parts = [f"# {title}\n"] if title else []
    parts += [
        "## Write gap per fault x entry point\n",
        markdown_table(GAP_HEADER, gap_cells(agg)),
        "",
        "## Recovery and data per fault\n",
        markdown_table(FAULT_HEADER, fault_cells(agg)),
        "",
    ]
    header, rows = mark_cells(agg)
    if rows:
        parts += [
            "## Where the gap went (p50 ms after the injection, from the nodes' logs)\n",
            markdown_table(header, rows),
            "",
        ]
    steps = step_cells(agg)
    if steps:
        parts += ["## Step by step (ms from one mark to the next, per run)\n", markdown_table(STEP_HEADER, steps), ""]
    cpu = cpu_cells(agg)
    if cpu:
        parts += ["## CPU in the failover window (2 cores)\n", markdown_table(CPU_HEADER, cpu), ""]
    stolen = steal_cells(agg)
    if stolen:
        parts += ["## Worst gap per run by steal in its window\n", markdown_table(STEAL_HEADER, stolen), ""]
    slow, more = slow_cells(agg), slow_note(agg)
    if slow:
        parts += [
            "## Gaps above their target: what the client waited on\n",
            markdown_table(SLOW_HEADER, slow),
            "",
            *([more, ""] if more else []),
        ]
    parts += [_footer(agg), ""]
    return "\n".join(parts)


def render_text(agg: Aggregate) -> str:
    """The same two tables for a terminal."""
    if not agg.rows:
        return f"no failover measurements. {_footer(agg)}\n"
    parts = [_text(GAP_HEADER, gap_cells(agg)), "", _text(FAULT_HEADER, fault_cells(agg)), ""]
    header, rows = mark_cells(agg)
    if rows:
        parts += ["where the gap went: p50 ms after the injection, from the nodes' logs", _text(header, rows), ""]
    steps = step_cells(agg)
    if steps:
        parts += ["step by step: ms from one mark to the next, per run", _text(STEP_HEADER, steps), ""]
    cpu = cpu_cells(agg)
    if cpu:
        parts += ["CPU in the failover window", _text(CPU_HEADER, cpu), ""]
    stolen = steal_cells(agg)
    if stolen:
        parts += ["worst gap per run by steal in its window", _text(STEAL_HEADER, stolen), ""]
    slow = slow_cells(agg)
    if slow:
        parts += ["gaps above their target: what the client waited on", _text(SLOW_HEADER, slow), slow_note(agg), ""]
    return "\n".join([*parts, _footer(agg), ""])
