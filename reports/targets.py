"""The project's targets against a run's numbers (slo.yaml `targets:`): which fault x entry point missed its target,
and which got slower than the kept benchmark.

    python -m reports targets reports/out/measurements.jsonl     # one line per missed target (exit 0; 2 bad input)
    python -m reports targets OUT/measurements.jsonl --against reports/measured/failover-*-bench-*.jsonl

A target is judged on the p95 of a fault x entry point over the run's repetitions, idle or under load by the row's
settings variant ("load 50%"). `.ci/run` prints these lines; `reports bench --check-targets` exits 1 on any.

A target this machine misses already (the soft faults' 1.0 s idle, docs/findings.md) cannot show a regression: it
is missed before and after. So the same check also compares with the kept benchmark (`--against`, by default the
kept bench files, reports/measured/failover-*-bench-*.jsonl): a fault x entry point is REGRESSED when its p50 is
above the kept runs' p95, i.e. a typical run now is slower than 19 in 20 kept ones. The p50 is what is compared
because it is the stable statistic at N = 10 (the p95 of 10 runs is their maximum and moves with one slow run);
the kept p95 is the margin, measured instead of chosen, and it includes the kept days' own steal and noise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from chaos.checkers.slo import target
from reports.aggregate import Aggregate, GapStats, Spread, aggregate_loaded, load_measurements


def judged(agg: Aggregate) -> list[tuple[str, str, float, float, str, bool]]:
    """(fault label, entry point, p95 ms, target ms, target source, met) for every row that has a target."""
    out = []
    for g in agg.gaps:
        t = target(g.fault, loaded="load " in g.fault)
        if t is None or g.gap.p95 is None:
            continue
        out.append((g.fault, g.entry_point, g.gap.p95, t.bound_ms, t.source, g.gap.p95 <= t.bound_ms))
    return out


def missed(agg: Aggregate) -> list[str]:
    return [
        f"{fault} x {ep}: p95 {p95:.0f} ms > target {bound:.0f} ms ({source})"
        for fault, ep, p95, bound, source, ok in judged(agg)
        if not ok
    ]


REPO_ROOT = Path(__file__).resolve().parents[1]
#: the kept benchmark a new run is compared with: the same files the README's headline is generated from
KEPT_BENCH = "reports/measured/failover-*-bench-*.jsonl"
#: fewer kept runs than this make no margin (the p95 of 2 runs is their maximum)
MIN_KEPT_RUNS = 5


def kept_bench_files(root: Path = REPO_ROOT) -> list[Path]:
    return sorted(root.glob(KEPT_BENCH))


def add_against_argument(p: argparse.ArgumentParser, *, what: str) -> None:
    """The --against of `reports bench` and `reports scorecard`: the kept measurements `what` is compared with."""
    p.add_argument(
        "--against",
        nargs="*",
        type=Path,
        default=None,
        metavar="KEPT",
        help=f"the kept measurements {what} (default: {KEPT_BENCH}; a bare --against = no comparison)",
    )


def against_files(given: Sequence[Path] | None) -> tuple[list[Path], list[str]]:
    """The kept files an optional --against names (every kept benchmark when it is not given, none for a bare
    --against), and those of them that do not exist."""
    files = list(given) if given is not None else kept_bench_files()
    return files, [str(f) for f in files if not f.exists()]


def kept_verdict(g: GapStats, kept: Aggregate | None, *, min_kept: int = MIN_KEPT_RUNS) -> tuple[str, Spread | None]:
    """("REGRESSED" | "ok" | "not compared", the kept spread) for one fault x entry point of a run: REGRESSED when
    its p50 is above the kept runs' p95 (same label, so idle is compared with idle and load with load). Kept rows
    with fewer than `min_kept` runs are not compared."""
    k = next((x.gap for x in kept.gaps if (x.fault, x.entry_point) == (g.fault, g.entry_point)), None) if kept else None
    if k is None or k.n < min_kept or k.p95 is None or g.gap.p50 is None:
        return "not compared", k
    return ("REGRESSED" if g.gap.p50 > k.p95 else "ok"), k


def regressions(agg: Aggregate, kept: Aggregate, *, min_kept: int = MIN_KEPT_RUNS) -> list[str]:
    """One line per fault x entry point whose p50 is above the kept runs' p95 (kept_verdict)."""
    out = []
    for g in agg.gaps:
        verdict, k = kept_verdict(g, kept, min_kept=min_kept)
        if verdict == "REGRESSED" and k is not None:
            out.append(
                f"{g.fault} x {g.entry_point}: p50 {g.gap.p50:.0f} ms over {g.gap.n} run(s) > kept p95 "
                f"{k.p95:.0f} ms over {k.n} (kept p50 {k.p50:.0f} ms)"
            )
    return out


def kept_aggregate(files: Sequence[Path]) -> Aggregate | None:
    return aggregate_loaded(load_measurements(list(files))) if files else None


def compared(files: Sequence[Path], against: Sequence[Path]) -> tuple[list[str], list[str]]:
    """(missed-target lines, regression lines) of a run's files, the regressions against the kept files."""
    agg = aggregate_loaded(load_measurements(list(files)))
    kept = kept_aggregate(against)
    return missed(agg), (regressions(agg, kept) if kept is not None else [])


def report(misses: list[str], regressed: list[str]) -> None:
    for line in misses:
        print(f"MISSED TARGET: {line}")
    for line in regressed:
        print(f"REGRESSED: {line}")


def run(args: argparse.Namespace) -> int:
    files = [Path(f) for f in args.files]
    absent = [str(f) for f in files if not f.exists()]
    if absent:
        print(f"targets: no such file: {', '.join(absent)}", file=sys.stderr)
        return 2
    against = [Path(f) for f in args.against or []]
    absent = [str(f) for f in against if not f.exists()]
    if absent:
        print(f"targets: no such kept file: {', '.join(absent)}", file=sys.stderr)
        return 2
    lines, regressed = compared(files, against)
    report(lines, regressed)
    met = len(judged(aggregate_loaded(load_measurements(files)))) - len(lines)
    tail = f", {len(regressed)} regressed against {len(against)} kept file(s)" if against else ""
    print(f"targets: {met} met, {len(lines)} missed{tail}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help="measurements.jsonl files")
    p.add_argument(
        "--against",
        nargs="+",
        type=Path,
        default=None,
        metavar="KEPT",
        help=f"also compare with these kept measurements (e.g. {KEPT_BENCH}): REGRESSED when a p50 is above their p95",
    )


def main_for_test(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return run(p.parse_args(argv))
