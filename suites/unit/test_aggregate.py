"""Benchmark aggregation on hand-made measurement rows, and the benchmark's command builder (no cluster)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reports import bench
from reports.__main__ import main as reports_main
from reports.aggregate import (
    Spread,
    aggregate,
    aggregate_loaded,
    load_measurements,
    percentile,
    render_markdown,
    render_text,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
EPS = ("haproxy", "traefik", "pgbouncer", "multihost")


def _row(
    fault: str = "switchover",
    gap: float | None = 2000.0,
    slo: float = 3000.0,
    *,
    eps: tuple[str, ...] = EPS,
    healthy: float = 7.0,
    elected: float | None = 3.0,
    **kw: object,
) -> dict:
    """A measurement row as chaos/experiments/failover.py records it, same gap on every entry point unless
    overridden."""
    return {
        "kind": "failover",
        "at": "2026-01-01T00:00:00",
        "fault": fault,
        "run_id": "r",
        "old_leader": "patroni-1",
        "new_leader": "patroni-2",
        "timeline_before": 1,
        "timeline_after": 2,
        "leader_elected_s": elected,
        "healthy_after_s": healthy,
        "gaps_ms": dict.fromkeys(eps, gap),
        "slo_ms": dict.fromkeys(eps, slo),
        "slo_source": dict.fromkeys(eps, f"slo.yaml: {slo:.0f}"),
        "lost": 0,
        "unexpected": 0,
        "duplicates": 0,
        "recovered": 0,
        "split_brain": [],
        "acknowledged": 900,
        "attempted": 1000,
        **kw,
    }


# ---------------------------------------------------------------- percentiles


def test_nearest_rank_percentiles_on_known_data():
    data = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(data, 50) == 50.0
    assert percentile(data, 95) == 95.0
    assert percentile(data, 100) == 100.0
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0  # unsorted input
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0  # rank ceil(2) = 2: a measured value, no 2.5
    assert percentile([10.0, 20.0, 30.0, 40.0, 50.0], 95) == 50.0  # small n: p95 is the maximum
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_percentile_rejects_out_of_range():
    with pytest.raises(ValueError):
        percentile([1.0], 0)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_spread_ignores_non_numbers():
    s = Spread.of([3.0, None, "x", True, float("nan"), 1.0, 2.0])
    assert (s.n, s.p50, s.p95, s.max) == (3, 2.0, 3.0, 3.0)
    assert Spread.of([]) == Spread(0, None, None, None)


# ---------------------------------------------------------------- grouping, SLO


def test_gap_stats_per_fault_and_entry_point():
    rows = [_row(gap=g) for g in (1000.0, 2000.0, 3000.0, 4000.0, 5000.0)]
    agg = aggregate(rows)
    hap = next(g for g in agg.gaps if g.entry_point == "haproxy")
    assert (hap.n, hap.gap.p50, hap.gap.p95, hap.gap.max) == (5, 3000.0, 5000.0, 5000.0)
    assert hap.slo_ms == (3000.0,)
    assert (hap.within, hap.judged, hap.pass_rate) == (3, 5, 0.6)  # the bound itself is within


def test_missing_gap_counts_against_the_slo_but_not_in_percentiles():
    rows = [_row(gap=1000.0), _row(gap=None)]
    hap = next(g for g in aggregate(rows).gaps if g.entry_point == "haproxy")
    assert hap.n == 2 and hap.gap.n == 1 and hap.gap.max == 1000.0
    assert (hap.within, hap.judged) == (1, 2)


def test_row_without_slo_is_not_judged():
    row = _row(gap=1000.0)
    del row["slo_ms"]
    hap = next(g for g in aggregate([row]).gaps if g.entry_point == "haproxy")
    assert hap.judged == 0 and hap.pass_rate is None and hap.slo_ms == ()


def test_fault_stats_sum_data_problems_and_recovery_percentiles():
    anomaly = {"kind": "overlap", "detail": "both acknowledged"}
    rows = [
        _row("hard_kill", 22000.0, 22000.0, healthy=h, elected=e, lost=lost, duplicates=d, split_brain=sb)
        for h, e, lost, d, sb in (
            (30.0, 21.0, 0, 0, []),
            (40.0, 22.0, 2, 1, [anomaly, anomaly]),
            (35.0, None, 1, 0, [anomaly]),
        )
    ]
    rows[0]["lost"] = "frozenset({1})"  # an old row format must not break the sum
    f = aggregate(rows).fault("hard_kill")
    assert f.runs == 3
    assert (f.healthy_after_s.p50, f.healthy_after_s.p95) == (35.0, 40.0)
    assert (f.leader_elected_s.n, f.leader_elected_s.p50) == (2, 21.0)
    assert (f.lost, f.duplicates, f.split_brain, f.split_brain_runs) == (3, 1, 3, 2)


def test_ordering_of_faults_and_entry_points_is_fixed():
    rows = [
        _row("zeta"),
        _row("hard_kill"),
        _row("alpha"),
        _row("switchover"),
        _row("postmaster_crash"),
        _row("graceful_stop", eps=("custom", "multihost", "haproxy", "pgbouncer", "traefik", "another")),
    ]
    agg = aggregate(rows)
    assert [f.fault for f in agg.faults] == [
        "switchover",
        "graceful_stop",
        "postmaster_crash",
        "hard_kill",
        "alpha",
        "zeta",
    ]
    assert [g.entry_point for g in agg.gaps if g.fault == "graceful_stop"] == [
        "haproxy",
        "traefik",
        "pgbouncer",
        "multihost",
        "another",
        "custom",
    ]
    assert aggregate(list(reversed(rows))).to_dict() == agg.to_dict()  # input order does not matter


def test_entry_point_counted_only_in_runs_that_measured_it():
    rows = [_row(eps=("haproxy",)), _row(eps=("haproxy", "traefik"))]
    n = {g.entry_point: g.n for g in aggregate(rows).gaps}
    assert n == {"haproxy": 2, "traefik": 1}


# ---------------------------------------------------------------- reading


def test_malformed_lines_and_other_kinds_are_counted_and_ignored(tmp_path):
    good = _row()
    lines = [
        json.dumps(good),
        "",
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"kind": "bench", "x": 1}),
        json.dumps({"kind": "failover", "fault": "switchover"}),  # no gaps_ms
        json.dumps({"kind": "failover", "gaps_ms": {"haproxy": 1}}),  # no fault
        json.dumps(good)[:40],
    ]  # truncated by a crash
    path = tmp_path / "measurements.jsonl"
    path.write_text("\n".join(lines) + "\n")
    loaded = load_measurements([path])
    assert (len(loaded.rows), loaded.other_kinds, loaded.malformed) == (1, 1, 5)
    agg = aggregate_loaded(loaded)
    assert (agg.rows, agg.other_kinds, agg.malformed) == (1, 1, 5)
    assert "ignored 1 of other kinds, 5 malformed" in render_text(agg)


def test_several_files_are_merged(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps(_row(gap=1000.0)) + "\n")
    b.write_text(json.dumps(_row(gap=2000.0)) + "\n" + json.dumps(_row("hard_kill")) + "\n")
    agg = aggregate_loaded(load_measurements([a, b]))
    assert agg.rows == 3 and next(g for g in agg.gaps if g.fault == "switchover").n == 2


def test_missing_file_raises(tmp_path):
    with pytest.raises(OSError):
        load_measurements([tmp_path / "nope.jsonl"])


# ---------------------------------------------------------------- rendering


def test_markdown_has_header_and_one_row_per_fault_and_entry_point():
    rows = [_row("switchover", 2000.0), _row("switchover", 2500.0), _row("hard_kill", 21000.0, 22000.0)]
    md = render_markdown(aggregate(rows))
    gap_table = md.split("## Recovery")[0]
    table = [ln for ln in gap_table.splitlines() if ln.startswith("|")]
    assert table[0] == (
        "| fault | entry point | n | p50 ms | p95 ms | max ms | SLO ms | within SLO | healthy again p50/p95 s |"
    )
    assert set(table[1]) <= {"|", "-"}
    body = table[2:]
    assert len(body) == 2 * len(EPS)
    assert body[0] == "| switchover | haproxy | 2 | 2000 | 2500 | 2500 | 3000 | 2/2 (100%) | 7.0 / 7.0 |"
    assert [ln.split(" | ")[0].lstrip("| ") for ln in body] == ["switchover"] * 4 + ["hard_kill"] * 4
    assert "## Recovery and data per fault" in md


def test_text_table_aligns_columns_and_handles_empty():
    txt = render_text(aggregate([_row(), _row("hard_kill", None, 22000.0, elected=None)]))
    lines = txt.splitlines()
    assert lines[0].startswith("fault") and "healthy again p50/p95 s" in lines[0]
    gap_lines = lines[: lines.index("")]
    assert len({len(ln) for ln in gap_lines[2:]}) == 1  # right-aligned last column: equal widths
    assert any("1 (1 no gap)" in ln and "0/1 (0%)" in ln for ln in gap_lines)
    assert "no failover measurements" in render_text(aggregate([]))


def test_slo_range_shown_when_bounds_differ():
    md = render_markdown(aggregate([_row("hard_kill", 1000.0, 22000.0), _row("hard_kill", 1000.0, 12000.0)]))
    assert "| 12000–22000 |" in md


# ---------------------------------------------------------------- the benchmark: command builder and CLI


def test_pytest_command_per_fault():
    cmd = bench.pytest_command("switchover", python="/py")
    assert cmd == [
        "/py",
        "-m",
        "pytest",
        "suites/failover",
        "-k",
        "test_switchover_meets_slo",
        "-p",
        "no:cacheprovider",
        "-q",
        "--keep-topology",
    ]
    assert bench.pytest_command("hard_kill", python="/py", extra=["-x"])[-2:] == ["--keep-topology", "-x"]
    assert bench.pytest_command("graceful_stop")[0] == sys.executable


def test_every_mapped_test_exists_in_the_failover_suite():
    source = (REPO / "suites" / "failover" / "test_leader_failures.py").read_text()
    for fault, test in bench.FAULT_TESTS.items():
        assert f"def {test}(" in source, f"{fault}: {test} is not in the failover suite"
    assert set(bench.DEFAULT_FAULTS) == {"switchover", "graceful_stop", "postmaster_crash"}


def test_k_expressions_select_exactly_one_test():
    """-k is a substring match: no expression may also pick another test (e.g. a parametrized one)."""
    source = (REPO / "suites" / "failover" / "test_leader_failures.py").read_text()
    names = [ln.split("(")[0][len("def ") :] for ln in source.splitlines() if ln.startswith("def test_")]
    for test in bench.FAULT_TESTS.values():
        assert [n for n in names if test in n] == [test]


def test_parse_faults():
    assert bench.parse_faults(" switchover, hard_kill,switchover ") == ["switchover", "hard_kill"]
    with pytest.raises(ValueError, match="unknown"):
        bench.parse_faults("switchover,nope")
    with pytest.raises(ValueError):
        bench.parse_faults(" , ")


def test_env_points_measurements_at_the_benchmark_dir(tmp_path):
    env = bench.bench_env(tmp_path, base={"PATH": "/bin", "DPG_REPORT_DIR": "/elsewhere"})
    assert env == {"PATH": "/bin", "DPG_REPORT_DIR": str(tmp_path.resolve())}


def test_schedule_is_round_robin():
    assert bench.schedule(2, ["a", "b"]) == [(1, "a"), (1, "b"), (2, "a"), (2, "b")]


def test_expected_seconds_prefers_the_same_fault():
    recs = [bench.RunRecord(1, 1, "a", 0, 10.0, 1), bench.RunRecord(2, 1, "b", 0, 30.0, 1)]
    assert bench.expected_seconds(recs, "a") == 10.0
    assert bench.expected_seconds(recs, "c") == 20.0
    assert bench.expected_seconds([], "a") == 0.0


def test_bench_help_works():
    out = subprocess.run(
        [sys.executable, "-m", "reports", "bench", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "--runs" in out.stdout and "--max-minutes" in out.stdout and "--faults" in out.stdout


def test_bench_rejects_unknown_fault_and_used_out_dir(tmp_path, capsys):
    assert reports_main(["bench", "--faults", "nope", "--out", str(tmp_path)]) == 2
    (tmp_path / "measurements.jsonl").write_text("")
    assert reports_main(["bench", "--out", str(tmp_path)]) == 2
    assert "fresh --out" in capsys.readouterr().err


def test_table_command(tmp_path, capsys):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(_row()) + "\nbroken\n")
    assert reports_main(["table", str(path), "--markdown"]) == 0
    out = capsys.readouterr().out
    tables = out.split("## Gaps above their target")[0]  # the 2000 ms gaps are also listed there (target 1000)
    assert tables.count("| switchover |") == len(EPS) + 1 and "1 malformed" in out
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert reports_main(["table", str(empty)]) == 1


FAKE_PYTEST = """
import json, os, sys
fault = sys.argv[1]
with open(os.path.join(os.environ["DPG_REPORT_DIR"], "measurements.jsonl"), "a") as fh:
    fh.write(json.dumps({row}) + "\\n")
print("FAILED suites/failover/test_leader_failures.py::x - SLO breach" if fault == "graceful_stop" else "1 passed")
sys.exit(1 if fault == "graceful_stop" else 0)
"""


def test_bench_loop_with_a_fake_pytest(tmp_path, monkeypatch, capsys):
    """The loop end to end without a cluster: each run's rows land in the bench dir, exit codes are kept,
    a failed run still counts as data, and bench.md/bench.json are written."""
    script = FAKE_PYTEST.replace("{row}", repr(_row()).replace("'switchover'", "fault"))
    monkeypatch.setattr(bench, "pytest_command", lambda fault, extra=(): [sys.executable, "-c", script, fault])
    code = reports_main(["bench", "--runs", "2", "--faults", "switchover,graceful_stop", "--out", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [(r["fault"], r["exit_code"], r["rows"]) for r in report["runs"]] == [
        ("switchover", 0, 1),
        ("graceful_stop", 1, 1),
        ("switchover", 0, 1),
        ("graceful_stop", 1, 1),
    ]
    assert report["aggregate"]["rows"] == 4 and report["not_run"] == []
    md = (tmp_path / "bench.md").read_text()
    assert md.count("| graceful_stop | haproxy | 2 |") == 1
    out = capsys.readouterr().out
    assert "[1/4] run 1/2 switchover" in out and "SLO breach" in out and "bench.md" in out
    assert len(list((tmp_path / "logs").iterdir())) == 4


def test_bench_time_bound_starts_nothing_past_the_deadline(tmp_path):
    b = bench.Bench(runs=3, faults=["switchover"], out=tmp_path, max_minutes=1)
    b.started = time.time() - 120
    b.execute()
    assert b.records == [] and [n["reason"] for n in b.not_run] == ["time bound"] * 3
    assert b.write_outputs().rows == 0


def test_runs_under_other_settings_are_their_own_rows():
    """Synchronous-mode or patched-probe runs of a fault must not be averaged into its stock runs."""
    rows = [
        _row("freeze", 22000.0),
        _row("freeze", 22400.0),
        _row("freeze", 21000.0, variant="member probe 500 ms"),
        _row("freeze", 22300.0, variant="synchronous_mode"),
        _row("hard_kill", 21000.0, variant=""),
        _row("switchover"),
    ]
    agg = aggregate(rows)
    assert [f.fault for f in agg.faults] == [
        "switchover",
        "hard_kill",
        "freeze",
        "freeze [member probe 500 ms]",
        "freeze [synchronous_mode]",
    ]
    haproxy = {g.fault: g for g in agg.gaps if g.entry_point == "haproxy"}
    assert (haproxy["freeze"].n, haproxy["freeze"].gap.max) == (2, 22400.0)
    assert (haproxy["freeze [member probe 500 ms]"].n, haproxy["freeze [member probe 500 ms]"].gap.p50) == (1, 21000.0)


def test_gaps_above_their_target_name_what_the_client_waited_on():
    """A gap above the project's target (slo.yaml targets: switchover 1000 ms idle, 1500 ms under load) is listed
    with the longest attempt inside it; gaps within the target and rows without attempts data are told apart."""
    hung = {"slowest_ms": 2001.0, "slowest": "fail: connection timeout expired", "errors": {"fail: refused": 5}}
    rows = [
        _row("switchover", 800.0),
        _row("switchover", 900.0, gaps_ms={"haproxy": 700.0, "traefik": 2470.0}, gap_attempts={"traefik": hung}),
        _row("switchover", 1400.0, eps=("haproxy",), variant="load 50%"),  # within the loaded target
        _row("switchover", 1200.0, eps=("pgbouncer",)),  # an older row: no attempts kept
    ]
    agg = aggregate(rows)
    assert [(g.fault, g.entry_point, g.gap_ms) for g in agg.slow_gaps] == [
        ("switchover", "traefik", 2470.0),
        ("switchover", "pgbouncer", 1200.0),
    ]
    md = render_markdown(agg)
    section = md.split("## Gaps above their target")[1]
    assert "| switchover | traefik | 2026-01-01T00:00:00 | 2470 | 1000 | 2001 | fail: connection timeout expired " \
           "| 5× fail: refused |" in section  # fmt: skip
    assert "| switchover | pgbouncer | 2026-01-01T00:00:00 | 1200 | 1000 | – | not recorded | – |" in section
    assert "gaps above their target" in render_text(agg)
    assert "Gaps above their target" not in render_markdown(aggregate([_row("switchover", 800.0)]))
