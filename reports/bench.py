"""Failover benchmark: repeat failover scenarios N times and report the write-gap distribution per entry point.

One scenario run = one pytest subprocess (`pytest suites/failover -k <test> --keep-topology`), so each run gets
the suite's own fixtures, healing and health gate, and a crashed run cannot take the benchmark down with it.
Every subprocess writes into one fresh directory (env DPG_REPORT_DIR), so the aggregate holds this benchmark's
rows only. A run that breaches its SLO still recorded its measurement: pytest's exit code is kept per run and
the run counts as data, not as a benchmark failure.

Exit codes: 0 at least one measurement aggregated, 1 none, 2 bad arguments, 130 interrupted (partial results
are still written).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reports.aggregate import (
    DASH,
    Aggregate,
    aggregate_loaded,
    load_measurements,
    parse_lines,
    render_markdown,
    render_text,
)
from reports.targets import add_against_argument, against_files, compared, report

REPO_ROOT = Path(__file__).resolve().parents[1]
SUITE = "suites/failover"
MEASUREMENTS = "measurements.jsonl"

#: fault -> pytest -k expression selecting the scenario that records it
FAULT_TESTS: dict[str, str] = {
    "switchover": "test_switchover_meets_slo",
    "graceful_stop": "test_graceful_stop_of_leader_meets_slo",
    "postmaster_crash": "test_postmaster_crash_fails_over",
    "hard_kill": "test_hard_kill_of_leader",
    "isolation": "test_isolated_leader_demotes",
    "freeze": "test_frozen_leader_accepts_no_late_writes",
    "replica_loss": "test_replica_loss_does_not_disturb_writes",
    "double_failover": "test_two_failovers_in_a_row",
}
#: the soft faults: each run takes well under a minute
DEFAULT_FAULTS = ("switchover", "graceful_stop", "postmaster_crash")
PYTEST_EXIT = {
    0: "passed",
    1: "tests failed",
    2: "interrupted",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}
#: what shapes the SLOs and the failover timing; recorded in bench.json (by name: no secrets here)
RECORDED_ENV = (
    "DPG_TTL",
    "DPG_LOOP_WAIT",
    "DPG_RETRY_TIMEOUT",
    "DPG_SYNCHRONOUS_MODE",
    "DPG_HAPROXY_INTER",
    "DPG_HAPROXY_RW_CHECK",
)
#: time pytest gets after SIGINT to run its teardown (heal_everything, health gate) before it is killed
INTERRUPT_GRACE_S = 120.0


# ---------------------------------------------------------------- pure helpers (unit-tested)


def parse_faults(text: str) -> list[str]:
    """Comma-separated fault names, validated, duplicates dropped, order kept."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAULT_TESTS]
    if unknown or not names:
        raise ValueError(f"unknown fault(s) {unknown or text!r}; known: {', '.join(FAULT_TESTS)}")
    return list(dict.fromkeys(names))


def pytest_command(fault: str, *, python: str = sys.executable, extra: Sequence[str] = ()) -> list[str]:
    """The command line of one run (cwd = repo root); --keep-topology so the stacks survive between runs."""
    return [
        python,
        "-m",
        "pytest",
        SUITE,
        "-k",
        FAULT_TESTS[fault],
        "-p",
        "no:cacheprovider",
        "-q",
        "--keep-topology",
        *extra,
    ]


def bench_env(report_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment with the measurements redirected into this benchmark's directory."""
    env = dict(os.environ if base is None else base)
    env["DPG_REPORT_DIR"] = str(Path(report_dir).resolve())
    return env


def schedule(runs: int, faults: Sequence[str]) -> list[tuple[int, str]]:
    """Round-robin (run 1 of every fault, then run 2 ...): a time bound hit early still covers every fault."""
    return [(i, f) for i in range(1, runs + 1) for f in faults]


def default_out_dir(now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return REPO_ROOT / "reports" / "out" / f"bench-{stamp}"


def expected_seconds(done: Sequence[RunRecord], fault: str) -> float:
    """Mean duration of earlier runs of this fault (of any fault if none yet): used to not start a run that
    would overrun the time budget."""
    same = [r.seconds for r in done if r.fault == fault]
    pool = same or [r.seconds for r in done]
    return sum(pool) / len(pool) if pool else 0.0


def fmt_duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


# ---------------------------------------------------------------- running


@dataclass
class RunRecord:
    index: int
    run: int
    fault: str
    exit_code: int | None
    seconds: float
    rows: int
    run_ids: list[str] = field(default_factory=list)
    timed_out: bool = False
    log: str = ""

    @property
    def outcome(self) -> str:
        if self.timed_out:
            return "stopped at the time bound"
        return PYTEST_EXIT.get(self.exit_code, f"exit {self.exit_code}") if self.exit_code is not None else "?"


def _line_count(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)


def _new_rows(path: Path, skip: int) -> list[dict[str, Any]]:
    """The failover rows a run appended (lines after `skip`)."""
    if not path.exists():
        return []
    with open(path, encoding="utf-8", errors="replace") as fh:
        return parse_lines(line for i, line in enumerate(fh) if i >= skip).rows


def _run_pytest(cmd: list[str], env: dict[str, str], log: Path, timeout: float | None) -> tuple[int, bool]:
    """Run one pytest; past `timeout` interrupt it like Ctrl-C so its teardown heals, then kill if it hangs."""
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
        try:
            return proc.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                return proc.wait(timeout=INTERRUPT_GRACE_S), True
            except subprocess.TimeoutExpired:
                proc.kill()
                return proc.wait(), True
        except KeyboardInterrupt:
            # the child got the same SIGINT (same process group): let it heal before we stop
            try:
                proc.wait(timeout=INTERRUPT_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise


def _failure_lines(log: Path, limit: int = 3) -> list[str]:
    """pytest's short summary lines (FAILED/ERROR ...), to show why a run failed without opening the log."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    hits = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
    return [h if len(h) <= 240 else h[:237] + "..." for h in hits[:limit]]


@dataclass
class Bench:
    runs: int
    faults: list[str]
    out: Path
    max_minutes: float
    extra: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # added to every run's environment (e.g. DPG_LOAD_FRACTION)
    records: list[RunRecord] = field(default_factory=list)
    not_run: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    interrupted: bool = False

    @property
    def jsonl(self) -> Path:
        return self.out / MEASUREMENTS

    def elapsed(self) -> float:
        return time.time() - self.started

    def remaining(self) -> float:
        return self.max_minutes * 60 - self.elapsed()

    def execute(self) -> None:
        plan = schedule(self.runs, self.faults)
        env = bench_env(self.out) | self.env
        for index, (run, fault) in enumerate(plan, start=1):
            if self.interrupted or self.remaining() < expected_seconds(self.records, fault):
                self.not_run.append(
                    {
                        "index": index,
                        "run": run,
                        "fault": fault,
                        "reason": "interrupted" if self.interrupted else "time bound",
                    }
                )
                continue
            try:
                self._one(index, len(plan), run, fault, env)
                self.write_outputs()
            except KeyboardInterrupt:  # between runs: stop starting new ones, keep what was measured
                self.interrupted = True
        if any(n["reason"] == "time bound" for n in self.not_run):
            print(f"time bound of {self.max_minutes:g} min reached: {len(self.not_run)} run(s) not started", flush=True)

    def _one(self, index: int, total: int, run: int, fault: str, env: dict[str, str]) -> None:
        print(
            f"[{index}/{total}] run {run}/{self.runs} {fault}: starting (elapsed {fmt_duration(self.elapsed())})",
            flush=True,
        )
        log = self.out / "logs" / f"{index:03d}-{fault}-run{run}.log"
        before, t0 = _line_count(self.jsonl), time.monotonic()
        try:
            code, timed_out = _run_pytest(
                pytest_command(fault, extra=self.extra), env, log, timeout=max(self.remaining(), 1.0)
            )
        except KeyboardInterrupt:
            self.interrupted = True
            code, timed_out = None, False
        rows = _new_rows(self.jsonl, before)
        rec = RunRecord(
            index,
            run,
            fault,
            code,
            round(time.monotonic() - t0, 1),
            len(rows),
            [str(r.get("run_id")) for r in rows],
            timed_out,
            str(log.relative_to(self.out)),
        )
        self.records.append(rec)
        self._report(rec, log)

    def _report(self, rec: RunRecord, log: Path) -> None:
        note = "" if rec.rows else "  NO MEASUREMENT (see log)"
        print(
            f"[{rec.index}] run {rec.run}/{self.runs} {rec.fault}: exit {rec.exit_code} ({rec.outcome}), "
            f"{rec.rows} row(s), {rec.seconds:.0f} s, elapsed {fmt_duration(self.elapsed())}"
            f" of {fmt_duration(self.max_minutes * 60)}{note}",
            flush=True,
        )
        if rec.exit_code == 5:
            print(f"    -k {FAULT_TESTS[rec.fault]!r} selected no test: is the mapping out of date?", flush=True)
        if rec.exit_code not in (0, None):
            for line in _failure_lines(log):
                print(f"    {line}", flush=True)

    def aggregate(self) -> Aggregate:
        return aggregate_loaded(load_measurements([self.jsonl] if self.jsonl.exists() else []))

    def to_dict(self, agg: Aggregate) -> dict[str, Any]:
        return {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started)),
            "elapsed_s": round(self.elapsed(), 1),
            "interrupted": self.interrupted,
            "config": {
                "runs": self.runs,
                "faults": self.faults,
                "max_minutes": self.max_minutes,
                "pytest_extra": self.extra,
            },
            "env": {k: os.environ[k] for k in sorted(os.environ) if k in RECORDED_ENV or k.startswith("DPG_SLO_")},
            "commands": {f: pytest_command(f, extra=self.extra) for f in self.faults},
            "measurements": str(self.jsonl),
            "runs": [asdict(r) | {"outcome": r.outcome} for r in self.records],
            "not_run": self.not_run,
            "aggregate": agg.to_dict(),
        }

    def markdown(self, agg: Aggregate) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started))
        head = render_markdown(agg, title=f"Failover benchmark {when}")
        runs = [
            "## Runs\n",
            f"{self.runs} run(s) x {', '.join(self.faults)}; time bound {self.max_minutes:g} min; "
            f"elapsed {fmt_duration(self.elapsed())}; {len(self.not_run)} not run.\n",
            "| # | run | fault | pytest exit | rows | s | log |",
            "|---|---|---|---|---|---|---|",
        ]
        runs += [
            f"| {r.index} | {r.run} | {r.fault} | {r.exit_code} ({r.outcome}) | {r.rows} | {r.seconds:.0f} | {r.log} |"
            for r in self.records
        ]
        return head + "\n" + "\n".join(runs) + "\n"

    def write_outputs(self) -> Aggregate:
        """Rewritten after every run: a benchmark killed half-way still leaves its numbers."""
        agg = self.aggregate()
        (self.out / "bench.json").write_text(json.dumps(self.to_dict(agg), indent=2, default=str) + "\n")
        (self.out / "bench.md").write_text(self.markdown(agg))
        return agg


# ---------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=5, help="repetitions of each fault (default 5)")
    p.add_argument(
        "--faults",
        default=",".join(DEFAULT_FAULTS),
        help=f"comma-separated, from: {', '.join(FAULT_TESTS)} (default: {','.join(DEFAULT_FAULTS)})",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory for measurements.jsonl, bench.md, bench.json and logs "
        "(default reports/out/bench-<timestamp>/; must not hold a measurements.jsonl yet)",
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=60.0,
        help="time bound: no run starts that is expected to overrun it, and a run still going at "
        "the bound is interrupted (it heals on the way out) (default 60)",
    )
    p.add_argument(
        "--load",
        type=float,
        default=None,
        metavar="F",
        help="also run every fault under open-loop load at F of the measured capacity (0.5 = 50 %%) and report the "
        "loaded numbers next to the idle ones",
    )
    p.add_argument(
        "--check-targets",
        action="store_true",
        help="exit 1 when a p95 misses the project's target for its fault (slo.yaml `targets:`) or a p50 is above "
        "the kept benchmark's p95 (REGRESSED; reports/targets.py)",
    )
    add_against_argument(p, what="--check-targets compares with")
    p.add_argument(
        "--hosts",
        type=int,
        default=None,
        metavar="N",
        help="also run every fault on the multi-host topology (N Docker hosts) and report both side by side",
    )
    p.add_argument(
        "--pytest-arg",
        dest="pytest_args",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument appended to every pytest command (repeatable), e.g. --pytest-arg=-x",
    )


def _running_stacks() -> set[str] | None:
    from topology import health, images
    from topology.errors import TopologyError

    try:
        return set(health.running_stacks(images.docker_client()))
    except TopologyError:
        return None


def _down_what_the_runs_started(before: set[str] | None) -> None:
    """The runs keep the topology between them (--keep-topology); afterwards only what was running before stays."""
    from topology import lifecycle

    now = _running_stacks()
    if before is None or now is None:
        return
    started = sorted(now - before)
    if started:
        lifecycle.down_started(started)
        print(f"benchmark: removed the stacks its runs started: {', '.join(started)}", flush=True)


def side_by_side(agg: Aggregate, tag: str, *, left: str = "1 host", right: str | None = None) -> str:
    """Each fault's rows without `tag` next to the same fault's rows with it ("3 hosts", "load 50%"), per entry
    point: p50/p95 of each and the ratio of the p50s. The rows carry the tag in their settings variant
    (chaos.experiments.cluster_settings.variant, FailoverExperiment), so populations are never mixed."""
    right = right or tag
    other = {(g.fault, g.entry_point): g for g in agg.gaps if tag in g.fault}
    lines = [
        f"## {left} vs {right} (write gap, ms)\n",
        f"| fault | entry point | {left} p50 | p95 | n | {right} p50 | p95 | n | ratio of the p50s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for g in agg.gaps:
        if tag in g.fault:
            continue
        base = g.fault.split(" [")[0]
        variant = g.fault[len(base) :].strip(" []")
        # the tag comes where the experiment puts it: hosts first, load last (cluster_settings.variant, failover)
        parts = [tag, variant] if "hosts" in tag else [variant, tag]
        m = other.get((f"{base} [{', '.join(p for p in parts if p)}]", g.entry_point))
        ratio = f"{m.gap.p50 / g.gap.p50:.2f}" if m and m.gap.p50 is not None and g.gap.p50 not in (None, 0) else DASH
        cells = [_fmt(g.gap.p50), _fmt(g.gap.p95), str(g.gap.n)]
        cells += [_fmt(m.gap.p50), _fmt(m.gap.p95), str(m.gap.n)] if m else [DASH, DASH, "0"]
        lines.append(f"| {g.fault} | {g.entry_point} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines) + "\n"


def _fmt(v: float | None) -> str:
    return DASH if v is None else f"{v:.0f}"


def _down_hosts_started() -> None:
    """The multi-host runs keep the hosts between them (--keep-topology); the benchmark removes them at its end."""
    from topology import multihost

    removed = multihost.down()
    if removed:
        print(f"benchmark: removed the hosts its runs started ({len(removed)} objects)", flush=True)


def run(args: argparse.Namespace) -> int:
    try:
        faults = parse_faults(args.faults)
    except ValueError as err:
        print(f"bench: {err}", file=sys.stderr)
        return 2
    if args.runs < 1 or args.max_minutes <= 0:
        print("bench: --runs must be >= 1 and --max-minutes > 0", file=sys.stderr)
        return 2
    out = (args.out or default_out_dir()).resolve()
    if (out / MEASUREMENTS).exists():
        print(
            f"bench: {out / MEASUREMENTS} exists; use a fresh --out so only this benchmark is aggregated",
            file=sys.stderr,
        )
        return 2
    if args.hosts is not None and args.hosts < 3:
        print("bench: --hosts needs at least 3 (one host per Patroni/etcd pair)", file=sys.stderr)
        return 2
    if args.load is not None and not 0 < args.load <= 1:
        print("bench: --load is a share of the measured capacity, 0 < F <= 1", file=sys.stderr)
        return 2
    against, absent = against_files(args.against)
    if absent:
        print(f"bench: no such kept file for --against: {', '.join(absent)}", file=sys.stderr)
        return 2
    os.environ.setdefault("DPG_RUN_ID", time.strftime("bench-%Y%m%dT%H%M%S"))  # one capacity measurement per bench
    parts: list[tuple[Path, list[str], dict[str, str]]] = [(out, list(args.pytest_args), {})]
    if args.hosts:  # the same faults once on one host, once on N hosts, each in its own directory
        parts = [(out / "1-host", list(args.pytest_args), {}),
                 (out / f"{args.hosts}-hosts", [*args.pytest_args, "--hosts", str(args.hosts)], {})]  # fmt: skip
    if args.load:  # idle, then under load, in the same benchmark (and on each topology when --hosts)
        pct = round(args.load * 100)
        parts = [(d / "idle", x, e) for d, x, e in parts] + [
            (d / f"load-{pct}", x, {**e, "DPG_LOAD_FRACTION": str(args.load)}) for d, x, e in parts
        ]
    benches = []
    for part_out, extra, env in parts:
        (part_out / "logs").mkdir(parents=True, exist_ok=True)
        bench = Bench(args.runs, faults, part_out, args.max_minutes / len(parts), extra, env)
        note = " ".join([*extra, *(f"{k}={v}" for k, v in env.items())])
        print(f"benchmark: {args.runs} run(s) x {', '.join(faults)} {note} -> {part_out}", flush=True)
        running_before = _running_stacks()
        try:
            bench.execute()
        finally:
            _down_what_the_runs_started(running_before)
            if "--hosts" in extra:
                _down_hosts_started()
        benches.append((bench, bench.write_outputs()))
        if bench.interrupted:
            break
    print()
    for _, agg in benches:
        print(render_text(agg), end="")
    if args.hosts:
        both = aggregate_loaded(load_measurements([b.jsonl for b, _ in benches if b.jsonl.exists()]))
        table = side_by_side(both, f"{args.hosts} hosts")
        (out / "bench-hosts.md").write_text(table)
        print("\n" + table)
        print(f"wrote {out / 'bench-hosts.md'}")
    if args.load:
        both = aggregate_loaded(load_measurements([b.jsonl for b, _ in benches if b.jsonl.exists()]))
        table = side_by_side(both, f"load {args.load:.0%}", left="idle")
        (out / "bench-load.md").write_text(table)
        print("\n" + table)
    print(f"wrote bench.md and bench.json under {out}")
    if args.check_targets:
        misses, regressed = compared([b.jsonl for b, _ in benches if b.jsonl.exists()], against)
        report(misses, regressed)
        print(f"targets: {len(misses)} missed, {len(regressed)} regressed against {len(against)} kept file(s)")
        if misses or regressed:
            return 1
    if any(b.interrupted for b, _ in benches):
        return 130
    return 0 if any(agg.rows for _, agg in benches) else 1
