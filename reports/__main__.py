"""`python -m reports bench` repeats failover scenarios and aggregates them; `python -m reports table` renders
the aggregate of existing measurement files.

    python -m reports bench --runs 5 --faults switchover,graceful_stop --max-minutes 30
    python -m reports table reports/out/measurements.jsonl [--markdown]

Exit codes of `table`: 0 rows found, 1 no failover rows, 2 a file could not be read.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _table(args: argparse.Namespace) -> int:
    from reports.aggregate import aggregate_loaded, load_measurements, render_markdown, render_text

    try:
        loaded = load_measurements(args.files)
    except OSError as err:
        print(f"table: {err}", file=sys.stderr)
        return 2
    agg = aggregate_loaded(loaded)
    print(render_markdown(agg) if args.markdown else render_text(agg), end="")
    return 0 if agg.rows else 1


def _bench(args: argparse.Namespace) -> int:
    from reports import bench
    return bench.run(args)


def main(argv: list[str] | None = None) -> int:
    from reports.bench import add_arguments

    p = argparse.ArgumentParser(prog="python -m reports", description="Failover benchmark and measurement tables.")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="repeat failover scenarios N times (needs the running cluster), "
                                     "print p50/p95/max write gap per fault x entry point",
                       description="Repeat failover scenarios as pytest subprocesses and aggregate their "
                                   "measurements (p50/p95 are nearest-rank).")
    add_arguments(b)
    b.set_defaults(fn=_bench)
    t = sub.add_parser("table", help="render the aggregate table of measurement JSONL files")
    t.add_argument("files", nargs="+", type=Path, metavar="FILE", help="measurements.jsonl file(s)")
    t.add_argument("--markdown", action="store_true", help="Markdown instead of the terminal table")
    t.set_defaults(fn=_table)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
