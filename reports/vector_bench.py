"""`python -m reports vector-bench`: search latency of the vector DB (HNSW vs exact scan) against the seed's
"<5 ms vector search" claim, plus recall@10 per hnsw.ef_search.

A benchmark, not a test: it needs the running vector stack (`python -m topology up vector`), sends bounded
numbers of queries to 127.0.0.1 only, prints p50/p95/p99/max and ops/s, and appends one `vector_bench` row
per mode and one `vector_recall` row per ef_search to the measurements file (topology/evidence.py).

Exit codes: 0 measured, 2 bad arguments or the vector DB not reachable.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

import psycopg

DEFAULT_EF = "1,10,40,100"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queries", type=int, default=1000, help="searches per mode (default 1000)")
    p.add_argument(
        "--exact-queries", type=int, default=200, help="searches for the exact scan, which is slower (default 200)"
    )
    p.add_argument("--k", type=int, default=10, help="neighbours per search (LIMIT, default 10)")
    p.add_argument(
        "--ef-search",
        default=DEFAULT_EF,
        help=f"comma list of hnsw.ef_search values for the recall sweep (default {DEFAULT_EF})",
    )
    p.add_argument("--recall-queries", type=int, default=50, help="queries per recall measurement (default 50)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="time bound per mode (default 120)")
    p.add_argument(
        "--rebuilds",
        type=int,
        default=0,
        help="also REINDEX the HNSW index this many times and measure recall after each build "
        "(HNSW graphs are random: recall varies from build to build; default 0)",
    )


def _ef_values(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--ef-search {text!r} is not a comma list of integers") from None
    if not values or any(v < 1 or v > 1000 for v in values):
        raise ValueError(f"--ef-search values must be in 1..1000, got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    from topology import vector
    from topology.errors import TopologyError
    from topology.evidence import OUT_DIR, record_measurement

    try:
        efs = _ef_values(args.ef_search)
        if min(args.queries, args.exact_queries, args.k, args.recall_queries) < 1 or args.max_seconds <= 0:
            raise ValueError("--queries, --exact-queries, --k, --recall-queries and --max-seconds must be positive")
        if not 0 <= args.rebuilds <= 50:
            raise ValueError("--rebuilds must be in 0..50")
    except ValueError as err:
        print(f"vector-bench: {err}", file=sys.stderr)
        return 2
    claim = vector.claimed_search_ms()
    try:
        fp = vector.fingerprint()
        print(f"vector DB: {fp.rows} rows, index {vector.INDEX} valid={fp.index_valid}; claim: search < {claim:g} ms")
        summaries = [
            vector.time_searches("hnsw", args.queries, k=args.k, max_seconds=args.max_seconds),
            vector.time_searches("exact", args.exact_queries, k=args.k, max_seconds=args.max_seconds),
        ]
        recalls = [(0, vector.measure_recall(queries=args.recall_queries, k=args.k, ef_search=ef)) for ef in efs]
        for build in range(1, args.rebuilds + 1):
            took = vector.rebuild_index()
            print(f"rebuild {build}/{args.rebuilds}: REINDEX {took:.1f}s", flush=True)
            recalls += [
                (build, vector.measure_recall(queries=args.recall_queries, k=args.k, ef_search=ef)) for ef in efs
            ]
    except psycopg.OperationalError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(
            f"vector-bench: vector DB not reachable ({first}); start it: python -m topology up vector", file=sys.stderr
        )
        return 2
    except TopologyError as err:
        print(f"vector-bench: {err}", file=sys.stderr)
        return 2

    print(f"\n| mode | n | p50 ms | p95 ms | p99 ms | max ms | ops/s | p95 < {claim:g} ms |")
    print("|---|---|---|---|---|---|---|---|")
    for s in summaries:
        print(
            f"| {s.mode} | {s.n} | {s.p50_ms:.2f} | {s.p95_ms:.2f} | {s.p99_ms:.2f} | {s.max_ms:.2f} | "
            f"{s.ops_per_s:.0f} | {'yes' if s.p95_ms < claim else 'no'} |"
        )
        record_measurement(
            "vector_bench", **asdict(s), k=args.k, rows=fp.rows, claim_ms=claim, meets_claim_p95=s.p95_ms < claim
        )
    print(f"\n| build | hnsw.ef_search | recall@{args.k} (mean of {args.recall_queries}) | worst query |")
    print("|---|---|---|---|")
    for build, r in recalls:
        print(f"| {'as found' if build == 0 else build} | {r.ef_search} | {r.recall:.3f} | {r.worst:.2f} |")
        record_measurement(
            "vector_recall",
            build=build,
            ef_search=r.ef_search,
            recall=r.recall,
            worst=r.worst,
            k=r.k,
            queries=r.queries,
        )
    if args.rebuilds:
        print("\n| hnsw.ef_search | builds | recall min | median | max |")
        print("|---|---|---|---|---|")
        for ef in efs:
            vals = sorted(r.recall for _, r in recalls if r.ef_search == ef)
            print(f"| {ef} | {len(vals)} | {vals[0]:.3f} | {vals[len(vals) // 2]:.3f} | {vals[-1]:.3f} |")
    print(f"\nappended to {OUT_DIR / 'measurements.jsonl'}")
    return 0
