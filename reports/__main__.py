"""`python -m reports bench` repeats failover scenarios and aggregates them; `python -m reports table` renders
the aggregate of existing measurement files.

    python -m reports bench --runs 5 --faults switchover,graceful_stop --max-minutes 30
    python -m reports table reports/out/measurements.jsonl [--markdown]
    python -m reports vector-bench --queries 1000          # vector search latency and recall (running vector DB)
    python -m reports layers --seconds 10                  # ops/s, p50/p95/p99 per entry point vs direct PostgreSQL
    python -m reports scorecard --results allure-results --measurements reports/out/measurements.jsonl \
        --out reports/out/scorecard                        # one run's scorecard: Markdown + self-contained HTML
    python -m reports keep failover --from reports/out/bench-<stamp>/measurements.jsonl   # keep a run's rows
    python -m reports docs [--check]                       # regenerate (check) the tables in docs/ from kept runs
    python -m reports txn-bench --sizes 10000,100000,1000000  # list-append checker speed/memory (no Docker)
    python -m reports etcd-leaderless --runs 20 --cut iptables-drop  # issue 21: the etcd raft leader cut off

Exit codes of `table`: 0 rows found, 1 no failover rows, 2 a file could not be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _table(args: argparse.Namespace) -> int:
    from reports.aggregate import (
        aggregate_loaded,
        load_measurements,
        render_markdown,
        render_text,
    )

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


def _vector_bench(args: argparse.Namespace) -> int:
    from reports import vector_bench

    return vector_bench.run(args)


def _layers(args: argparse.Namespace) -> int:
    from reports import layers

    return layers.run(args)


def _txn_bench(args: argparse.Namespace) -> int:
    from reports import txn_bench

    return txn_bench.run(args)


def _scorecard(args: argparse.Namespace) -> int:
    from reports import scorecard

    return scorecard.run(args)


def _docs(args: argparse.Namespace) -> int:
    from reports import docs

    return docs.main(args)


def _keep(args: argparse.Namespace) -> int:
    from reports import measured

    return measured.run_keep(args)


def main(argv: list[str] | None = None) -> int:
    from reports.bench import add_arguments

    p = argparse.ArgumentParser(prog="python -m reports", description="Failover benchmark and measurement tables.")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser(
        "bench",
        help="repeat failover scenarios N times (needs the running cluster), "
        "print p50/p95/max write gap per fault x entry point",
        description="Repeat failover scenarios as pytest subprocesses and aggregate their "
        "measurements (p50/p95 are nearest-rank).",
    )
    add_arguments(b)
    b.set_defaults(fn=_bench)
    t = sub.add_parser("table", help="render the aggregate table of measurement JSONL files")
    t.add_argument("files", nargs="+", type=Path, metavar="FILE", help="measurements.jsonl file(s)")
    t.add_argument("--markdown", action="store_true", help="Markdown instead of the terminal table")
    t.set_defaults(fn=_table)
    from reports import targets

    tg = sub.add_parser("targets", help="one line per fault x entry point whose p95 missed the project's target")
    targets.add_arguments(tg)
    tg.set_defaults(fn=targets.run)
    from reports import vector_bench

    v = sub.add_parser(
        "vector-bench",
        help="vector search latency (HNSW vs exact scan) and recall per ef_search (needs the running vector stack)",
    )
    vector_bench.add_arguments(v)
    v.set_defaults(fn=_vector_bench)
    from reports import layers, scorecard

    lb = sub.add_parser(
        "layers",
        help="ops/s and p50/p95/p99 per entry point (direct, HAProxy, PgBouncer, "
        "Traefik, Citus) in one run, as ratios to direct PostgreSQL "
        "(needs the running stacks)",
        description="Per-layer benchmark with pgbench and Locust; compares with the seed's targets.",
    )
    layers.add_arguments(lb)
    lb.set_defaults(fn=_layers)
    sc = sub.add_parser(
        "scorecard",
        help="turn one run's allure-results + measurements into scorecard.md and a "
        "self-contained scorecard.html (and `allure generate` where installed)",
    )
    scorecard.add_arguments(sc)
    sc.set_defaults(fn=_scorecard)
    from reports import docs, measured

    kp = sub.add_parser(
        "keep",
        help="copy one run's rows of a dataset into reports/measured/<dataset>-<date>.jsonl (the data behind docs/)",
        description="Keep a run's measurements as the data a published table is generated from.",
    )
    measured.add_keep_arguments(kp)
    kp.set_defaults(fn=_keep)
    dp = sub.add_parser(
        "docs",
        help="regenerate the tables between '<!-- generated: ... -->' markers in README.md and docs/*.md "
        "from reports/measured/; --check: exit 1 naming every stale block",
        description="Generated measurement tables: rewrite them from kept data, or check that they are fresh.",
    )
    docs.add_arguments(dp)
    dp.set_defaults(fn=_docs)
    from reports import txn_bench

    tb = sub.add_parser(
        "txn-bench",
        help="list-append checker speed and memory at 10k/100k/1M transactions of the "
        "snapshot-isolation simulator (no Docker)",
        description="Benchmark of chaos.checkers.elle against issue 17's targets.",
    )
    txn_bench.add_arguments(tb)
    tb.set_defaults(fn=_txn_bench)
    from reports import etcd_leaderless

    el = sub.add_parser(
        "etcd-leaderless",
        help="cut the raft leader of a standalone etcd trio N times; time to a new leader from logs and polling",
        description="Issue 21: how long two healthy etcd members stay leaderless after the leader is cut off.",
    )
    etcd_leaderless.add_arguments(el)
    el.set_defaults(fn=etcd_leaderless.run)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
