"""`python -m reports txn-bench`: how fast the list-append checker (chaos.checkers.elle) is, and how it grows.

A benchmark, not a test. For each size it writes a history of the snapshot-isolation simulator as JSONL
(untimed), then checks that file in a fresh child process exactly as `python -m chaos txn-check` would
(parse + analysis, timed), and takes that child's peak memory from its own `ru_maxrss` (tracemalloc would
multiply the run time at a million transactions). Issue 17's targets: 100,000 transactions in <= 30 s and
1,000,000 in <= 5 min on this 2-core machine. The result goes to reports/measured/txn-bench-<date>.json.

    nice -n 19 python -m reports txn-bench                    # 10k, 100k, 1M
    python -m reports txn-bench --sizes 10000,100000 --model serializable

Exit codes: 0 measured (targets met or not: the JSON says), 2 bad arguments or a child failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_SIZES = "10000,100000,1000000"
TARGETS_S = {100_000: 30.0, 1_000_000: 300.0}
MEASURED = Path(__file__).resolve().parent / "measured"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma list of transaction counts (default {DEFAULT_SIZES})")
    p.add_argument(
        "--model",
        default="strict-serializable",
        help="model to check (default strict-serializable: the most work, realtime order included)",
    )
    p.add_argument("--concurrency", type=int, default=10, help="simulated client processes (default 10, as Elle's)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--time-limit", type=float, default=1.0, help="cycle search seconds per component (default 1)")
    p.add_argument(
        "--out", type=Path, default=None, help="result JSON (default reports/measured/txn-bench-<date>.json)"
    )
    p.add_argument("--keep-dir", type=Path, default=None, help="keep the generated JSONL histories here")


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise ValueError(f"--sizes {text!r} is not a comma list of integers") from None
    if not sizes or sizes[0] < 10 or sizes[-1] > 5_000_000:
        raise ValueError("--sizes must be between 10 and 5,000,000")
    return sizes


def _child(args: list[str], timeout: float) -> dict[str, Any]:
    """Run this module as a child, return the JSON object it prints last."""
    proc = subprocess.run(
        [sys.executable, "-m", "reports.txn_bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"child {' '.join(args[:2])} failed ({proc.returncode}): {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def child_write(n: int, path: str, seed: int, concurrency: int) -> dict[str, Any]:
    """Stream the simulator's operations to a JSONL file."""
    from chaos.checkers.elle import simulate

    t0 = time.monotonic()
    ops = simulate.snapshot_isolation(n, seed=seed, concurrency=concurrency)
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(op, separators=(",", ":")) + "\n" for op in ops)
    return {"seconds": round(time.monotonic() - t0, 2), "bytes": os.path.getsize(path)}


def child_check(path: str, model: str, time_limit: float) -> dict[str, Any]:
    """What `python -m chaos txn-check PATH --model MODEL --json` does, timed, with this process's peak RSS."""
    from chaos.checkers.elle import check_file

    t0 = time.monotonic()
    v = check_file(path, model, time_limit=time_limit)
    wall = time.monotonic() - t0
    d = v.to_dict()
    return {
        "seconds": round(wall, 2),
        "peak_rss_mb": _peak_mb(),
        "valid": d["valid"],
        "anomaly_types": d["anomaly-types"],
        "not": d["not"],
        "anomaly_counts": {k: len(x) for k, x in d["anomalies"].items()},
        "stats": d["stats"],
    }


def _growth(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Between consecutive sizes: how much longer and bigger, and the exponent k of time ~ n^k."""
    out = []
    for a, b in itertools.pairwise(rows):
        ratio_n = b["transactions"] / a["transactions"]
        ratio_t = b["seconds"] / max(a["seconds"], 1e-9)
        out.append(
            {
                "from": a["transactions"],
                "to": b["transactions"],
                "size_ratio": round(ratio_n, 1),
                "time_ratio": round(ratio_t, 2),
                "memory_ratio": round(b["peak_rss_mb"] / a["peak_rss_mb"], 2),
                "time_exponent": round(math.log(ratio_t) / math.log(ratio_n), 2),
            }
        )
    return out


def _verdict_on_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for n, limit in TARGETS_S.items():
        row = next((r for r in rows if r["transactions"] == n), None)
        if row is not None:
            out.append(
                {
                    "transactions": n,
                    "target_s": limit,
                    "seconds": row["seconds"],
                    "met": row["seconds"] <= limit,
                    "margin_s": round(limit - row["seconds"], 1),
                }
            )
    return out


def run(args: argparse.Namespace) -> int:
    try:
        sizes = _sizes(args.sizes)
        from chaos.checkers.elle.models import canonical

        model = canonical(args.model)
        if args.concurrency < 1 or args.time_limit <= 0:
            raise ValueError("--concurrency and --time-limit must be positive")
    except ValueError as err:
        print(f"txn-bench: {err}", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="txn-bench-") as tmp:
        where = args.keep_dir or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        for n in sizes:
            path = str(where / f"si-{n}.jsonl")
            try:
                gen = _child(["_write", str(n), path, str(args.seed), str(args.concurrency)], timeout=3600)
                res = _child(["_check", path, model, str(args.time_limit)], timeout=3600)
            except (RuntimeError, subprocess.TimeoutExpired) as err:
                print(f"txn-bench: {n} transactions: {err}", file=sys.stderr)
                return 2
            st = res["stats"]
            row = {
                "transactions": n,
                "seconds": res["seconds"],
                "peak_rss_mb": res["peak_rss_mb"],
                "history_mb": round(gen["bytes"] / 2**20, 1),
                "generate_seconds": gen["seconds"],
                "ok": st["ok"],
                "fail": st["fail"],
                "info": st["info"],
                "edges": st["edges"],
                "components": st["components"],
                "largest_component": st["largest-component"],
                "phases_s": {k.removeprefix("seconds-"): v for k, v in st.items() if k.startswith("seconds-")},
                "valid": res["valid"],
                "anomaly_counts": res["anomaly_counts"],
                "not": res["not"],
            }
            rows.append(row)
            print(
                f"{n:>9} txns: {row['seconds']:7.1f} s, peak {row['peak_rss_mb']:7.1f} MB, "
                f"{row['edges']} edges, {row['components']} cyclic components, {row['anomaly_counts']}"
            )
    result = {
        "date": dt.date.today().isoformat(),
        "command": "python -m reports txn-bench " + args.sizes,
        "model": model,
        "simulator": "snapshot-isolation",
        "concurrency": args.concurrency,
        "seed": args.seed,
        "time_limit_s": args.time_limit,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "nice": os.nice(0),
            # others share this machine: the load average says how much of it we had
            "loadavg_before": load_before,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "sizes": rows,
        "growth": _growth(rows),
        "targets": _verdict_on_targets(rows),
    }
    out = args.out or MEASURED / f"txn-bench-{result['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for t in result["targets"]:
        print(
            f"target {t['transactions']} txns <= {t['target_s']:.0f} s: {'met' if t['met'] else 'MISSED'} "
            f"({t['seconds']:.1f} s)"
        )
    print(f"wrote {out}")
    return 0


def _main(argv: list[str]) -> int:
    """Child entry points (`_write N PATH SEED CONCURRENCY`, `_check PATH MODEL TIME_LIMIT`)."""
    if argv[:1] == ["_write"]:
        print(json.dumps(child_write(int(argv[1]), argv[2], int(argv[3]), int(argv[4]))))
        return 0
    if argv[:1] == ["_check"]:
        print(json.dumps(child_check(argv[1], argv[2], float(argv[3])), default=str))
        return 0
    print("usage: python -m reports txn-bench (this module's own arguments are for its children)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
