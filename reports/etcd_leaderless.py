"""`python -m reports etcd-leaderless`: issue 21's scenario N times in a row, one JSON row per run.

Each run cuts the current raft leader of a standalone etcd trio (chaos.experiments.etcd_leaderless: containers
dpg21-etcd-{1,2,3}, labelled io.dpg-chaos.managed=scratch21, removed at the end) and measures how long the two
healthy members stay without a leader, from their own log timestamps and from 100 ms polling.

    python -m reports etcd-leaderless --runs 20 --cut iptables-drop --out reports/out/etcd-leaderless.jsonl
    python -m reports etcd-leaderless --runs 20 --cut disconnect
    python -m reports etcd-leaderless --runs 20 --cut iptables-drop --pre-vote false
    python -m reports etcd-leaderless --runs 20 --cut iptables-drop --load      # Patroni-like clients at 1 Hz
    python -m reports etcd-leaderless --runs 20 --load --stall-follower 8      # one follower's disk blocked 8 s

"Long" is a leaderless period over 3 x the election timeout. Exit codes: 0 every run measured, 1 some run failed
(no leader at bootstrap, heal failed), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from chaos.experiments.etcd_leaderless import CUTS, LeaderlessExperiment, Settings


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--cut", choices=CUTS, default="iptables-drop")
    p.add_argument("--pre-vote", type=_bool, default=True, metavar="true|false")
    p.add_argument("--heartbeat", type=int, default=100, metavar="MS")
    p.add_argument("--election", type=int, default=1000, metavar="MS")
    p.add_argument("--log-level", default="info", choices=("debug", "info"))
    p.add_argument("--wait", type=float, default=5.0, help="seconds between a leader at bootstrap and the cut")
    p.add_argument("--load", action="store_true", help="Patroni-like clients at 1 Hz during the run")
    p.add_argument(
        "--prior-follower-cut", type=float, default=0.0, metavar="S",
        help="first partition a follower from the two others for S seconds and heal (the suite's "
        "test_minority_majority_split, run just before), then cut the leader",
    )  # fmt: skip
    p.add_argument(
        "--stall-follower", type=float, default=0.0, metavar="S",
        help="block one follower's disk (its fuse-overlayfs daemon stopped) for S seconds from 1 s before the cut",
    )  # fmt: skip
    p.add_argument("--reuse", action="store_true", help="keep one cluster for all runs (terms climb)")
    p.add_argument(
        "--keep-logs", type=Path, default=Path("reports/out/etcd-leaderless-logs"),
        help="where a long run's member logs are written",
    )  # fmt: skip
    p.add_argument("--max-minutes", type=float, default=30.0)
    p.add_argument("--out", type=Path, default=Path("reports/out/etcd-leaderless.jsonl"))


def nearest_rank(values: list[float], q: float) -> float | None:
    vs = sorted(values)
    return vs[max(0, math.ceil(q * len(vs)) - 1)] if vs else None


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """N, long count, p50/p95/max leaderless (log timestamps, polling where the logs had no election)."""
    ok = [r for r in rows if not r.get("error")]
    vals = [r["leaderless_log_s"] if r["leaderless_log_s"] is not None else r["leaderless_poll_s"] for r in ok]
    vals = [v for v in vals if v is not None]
    return {
        "variant": rows[0]["variant"] if rows else "",
        "n": len(ok),
        "failed": len(rows) - len(ok),
        "long": sum(1 for r in ok if r["long"]),
        "p50_s": nearest_rank(vals, 0.5),
        "p95_s": nearest_rank(vals, 0.95),
        "max_s": max(vals) if vals else None,
    }


def run(args: argparse.Namespace) -> int:
    import docker

    if not 1 <= args.runs <= 200 or args.heartbeat < 10 or args.election < 5 * args.heartbeat:
        print("etcd-leaderless: --runs 1..200, --heartbeat >= 10, --election >= 5 x heartbeat", file=sys.stderr)
        return 2
    settings = Settings(args.heartbeat, args.election, args.pre_vote, args.log_level)
    x = LeaderlessExperiment(
        docker.from_env(timeout=120),
        settings,
        args.cut,
        wait_after_bootstrap_s=args.wait,
        load=args.load,
        prior_follower_cut_s=args.prior_follower_cut,
        reuse=args.reuse,
        keep_logs=args.keep_logs,
        stall_follower_s=args.stall_follower,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.max_minutes * 60
    rows: list[dict[str, Any]] = []
    try:
        with args.out.open("a") as f:
            for n in range(1, args.runs + 1):
                if time.monotonic() > deadline:
                    print(f"etcd-leaderless: --max-minutes reached after {n - 1} runs", file=sys.stderr)
                    break
                row = x.run(n).row()
                rows.append(row)
                f.write(json.dumps(row) + "\n")
                f.flush()
                print(
                    f"run {n:2d}: leader {row['leader_before']} term {row['term_before']} -> "
                    f"{row['new_leader']} term {row['term_after']}: log {row['leaderless_log_s']} s, "
                    f"poll {row['leaderless_poll_s']} s{' LONG' if row['long'] else ''}"
                    f" load {row['loadavg'].get('cut')}{' ERROR ' + row['error'] if row['error'] else ''}",
                    flush=True,
                )
    finally:
        x.close()
    print(json.dumps(summary(rows)))
    return 1 if any(r.get("error") for r in rows) else 0
