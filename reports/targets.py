"""The project's targets against a run's numbers (slo.yaml `targets:`): which fault x entry point missed its target.

    python -m reports targets reports/out/measurements.jsonl     # one line per missed target (exit 0; 2 bad input)

A target is judged on the p95 of a fault x entry point over the run's repetitions, idle or under load by the row's
settings variant ("load 50%"). `.ci/run` prints these lines; `reports bench --check-targets` exits 1 on any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaos.checkers.slo import target
from reports.aggregate import Aggregate, aggregate_loaded, load_measurements


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


def run(args: argparse.Namespace) -> int:
    files = [Path(f) for f in args.files]
    absent = [str(f) for f in files if not f.exists()]
    if absent:
        print(f"targets: no such file: {', '.join(absent)}", file=sys.stderr)
        return 2
    agg = aggregate_loaded(load_measurements(files))
    lines = missed(agg)
    for line in lines:
        print(f"MISSED TARGET: {line}")
    met = len(judged(agg)) - len(lines)
    print(f"targets: {met} met, {len(lines)} missed")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help="measurements.jsonl files")


def main_for_test(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return run(p.parse_args(argv))
