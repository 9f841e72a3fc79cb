"""Generated measurement tables (`python -m reports docs`) and the kept runs behind them (`python -m reports keep`):
marker parsing, fresh/stale detection, blocks rendered from tiny fixture files, bad input. No cluster.

`test_the_published_tables_match_their_data` is the one that guards the repository: a number edited by hand in
docs/measurements.md, or a kept run added without regenerating, turns it red."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports import docs, measured
from reports.__main__ import main as reports_main
from reports.doc_tables import span
from reports.measured import DATASETS, InputError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
FAILOVER_MARKER = "<!-- generated: failover-table from reports/measured/failover-*.jsonl -->"


def failover_row(fault: str, gap: float, at: str, **kw) -> dict:
    eps = ("haproxy", "pgbouncer")
    return {
        "kind": "failover",
        "at": at,
        "fault": fault,
        "gaps_ms": dict.fromkeys(eps, gap),
        "slo_ms": dict.fromkeys(eps, 3000),
        "lost": 0,
        "unexpected": 0,
        "duplicates": 0,
        "split_brain": [],
        "leader_elected_s": 1.0,
        "healthy_after_s": 6.0,
        **kw,
    }


def kept_file(root: Path, name: str, rows: list[dict], header: dict | None = None) -> Path:
    path = root / "reports" / "measured" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(header)] if header else []
    path.write_text("\n".join(lines + [json.dumps(r) for r in rows]) + "\n")
    return path


def doc_with(root: Path, *markers: str) -> Path:
    doc = root / "docs" / "measurements.md"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("# Measurements\n\nprose before\n\n" + "".join(f"{m}\nold text\n{docs.CLOSE}\n\n" for m in markers))
    return doc


HEADER = {"kind": "kept", "dataset": "failover", "command": "python -m reports bench --runs 2 --faults switchover"}


# ---------------------------------------------------------------- the repository's own documents


def test_the_published_tables_match_their_data():
    code, lines = docs.run(docs.default_documents(REPO), REPO, check=True)
    stale = [line for line in lines if "STALE" in line]
    assert code == 0 and not stale, "regenerate with `python -m reports docs`:\n" + "\n".join(stale)


def test_every_block_names_a_dataset_with_a_command():
    for block in docs.BLOCKS.values():
        assert block.dataset in DATASETS, block
        assert block.data.command and block.data.keep_command().startswith("python -m reports keep ")


# ---------------------------------------------------------------- markers


def test_markers_are_parsed_with_name_pattern_and_body():
    lines = ["intro", FAILOVER_MARKER, "a", "b", docs.CLOSE, "after"]
    (found,) = docs.parse("x.md", lines)
    assert (found.name, found.source, found.open_line, found.close_line) == (
        "failover-table",
        "reports/measured/failover-*.jsonl",
        1,
        4,
    )
    assert found.body == ("a", "b")


@pytest.mark.parametrize(
    "lines, message",
    [
        (["<!-- generated: failover-table -->", docs.CLOSE], "x.md:1: malformed marker"),
        ([FAILOVER_MARKER, FAILOVER_MARKER, docs.CLOSE], "x.md:2: block opened inside block failover-table"),
        (["text", FAILOVER_MARKER, "body"], "x.md:2: block failover-table is never closed"),
        (["text", docs.CLOSE], "x.md:2: '<!-- end generated -->' without a block"),
        (["<!-- generated: nonsense-table from a.jsonl -->", docs.CLOSE], "x.md:1: unknown block 'nonsense-table'"),
    ],
)
def test_broken_markers_name_the_line(lines, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        docs.parse("x.md", lines)


# ---------------------------------------------------------------- rendering from data


def test_a_block_is_rendered_from_a_tiny_kept_file(tmp_path):
    kept_file(
        tmp_path,
        "failover-2026-12-05.jsonl",
        [
            failover_row("switchover", 800, "2026-12-05T10:01:00"),
            failover_row("switchover", 1000, "2026-12-05T10:02:30"),
            {"kind": "dr", "drill": "ignored: another kind"},
        ],
        HEADER | {"code": "abc1234"},
    )
    doc = doc_with(tmp_path, FAILOVER_MARKER)
    assert docs.run([doc], tmp_path, check=False)[0] == 0
    text = doc.read_text()
    assert "old text" not in text and text.startswith("# Measurements\n\nprose before\n")
    assert (
        "- `reports/measured/failover-2026-12-05.jsonl`: 2 rows measured 2026-12-05 10:01–10:02 with "
        "`python -m reports bench --runs 2 --faults switchover` (code abc1234)" in text
    )
    # nearest-rank over the two runs: p50 = 800, p95 = max = 1000; both within the 3000 ms SLO
    assert "| switchover | haproxy | 2 | 800 | 1000 | 1000 | 3000 | 2/2 (100%) | 6.0 / 6.0 |" in text
    assert text.rstrip().endswith(docs.CLOSE)


def test_several_kept_runs_are_listed_oldest_first_by_their_own_time(tmp_path):
    # "-run2" sorts before "." by name: the order must come from the data
    late = failover_row("freeze", 22000, "2026-12-05T15:00:00")
    kept_file(tmp_path, "failover-2026-12-05-run2.jsonl", [late], HEADER)
    kept_file(tmp_path, "failover-2026-12-05.jsonl", [failover_row("switchover", 900, "2026-12-05T09:00:00")], HEADER)
    kept = docs.load_block(docs.BLOCKS["failover-table"], "reports/measured/failover-*.jsonl", tmp_path)
    assert [k.path for k in kept] == [
        "reports/measured/failover-2026-12-05.jsonl",
        "reports/measured/failover-2026-12-05-run2.jsonl",
    ]


def test_no_kept_data_says_what_to_run_and_how_to_keep_it(tmp_path):
    doc = doc_with(tmp_path, "<!-- generated: etcd-table from reports/measured/dcs_outage-*.jsonl -->")
    docs.run([doc], tmp_path, check=False)
    text = doc.read_text()
    assert "_No kept measurement yet: run `pytest suites/etcd`, keep its rows with " in text
    assert "`python -m reports keep dcs_outage --command 'pytest suites/etcd'`" in text
    assert "|" not in text  # no table without data


def test_layers_block_from_the_benchmarks_own_json(tmp_path):
    row = {
        "engine": "pgbench",
        "workload": "read",
        "layer": "direct",
        "clients": 8,
        "seconds": 10,
        "ops": 70000,
        "failed": 0,
        "ops_per_s": 7000.0,
        "p50_ms": 0.5,
        "p95_ms": 2.5,
        "p99_ms": 8.0,
        "ratio_ops": 1.0,
        "ratio_p50": 1.0,
        "ratio_p95": 1.0,
        "ratio_p99": 1.0,
        "targets": "ops/s ✗ · p50 ✓ · p95 ✓",
    }
    path = tmp_path / "reports" / "measured" / "layers-2026-12-05.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"meta": {"started": "2026-12-05T10:00:00", "machine": {"cores": 2}}, "rows": [row]}))
    doc = doc_with(tmp_path, "<!-- generated: layers-table from reports/measured/layers-*.json -->")
    docs.run([doc], tmp_path, check=False)
    text = doc.read_text()
    assert "with `python -m reports layers --seconds 10 --clients 8 --locust-seconds 0` (2 cores)" in text
    assert "| pgbench | read | direct | 7,000 (1.00×) | 0.50 (1.00×) | 2.50 (1.00×) | 8.00 (1.00×) | 0 |" in text


def test_span_is_one_value_per_run_or_min_to_max():
    assert span([3.6]) == "4"
    assert span([3.6, 8.6], 1) == "3.6–8.6"
    assert span([1.0, 1.04], 1) == "1.0"
    assert span([None, "x", True]) == "–"
    assert span([0.002, 0.012], scale=1000) == "2–12"


# ---------------------------------------------------------------- fresh / stale


def test_check_is_fresh_after_generating_and_names_a_block_edited_by_hand(tmp_path):
    kept_file(tmp_path, "failover-2026-12-05.jsonl", [failover_row("switchover", 800, "2026-12-05T10:01:00")], HEADER)
    doc = doc_with(tmp_path, FAILOVER_MARKER, "<!-- generated: dr-table from reports/measured/dr-*.jsonl -->")
    assert docs.run([doc], tmp_path, check=True)[0] == 1  # "old text" is stale
    docs.run([doc], tmp_path, check=False)
    generated = doc.read_text()
    code, lines = docs.run([doc], tmp_path, check=True)
    assert code == 0 and all(line.endswith("fresh") for line in lines)

    doc.write_text(generated.replace("| 800 |", "| 750 |", 1))  # a number "corrected" by hand
    code, lines = docs.run([doc], tmp_path, check=True)
    assert code == 1
    assert lines[0].startswith("docs/measurements.md:5 failover-table: STALE")
    assert lines[1].endswith("dr-table: fresh") and lines[-1] == "1 generated block(s) out of date"
    assert doc.read_text() != generated  # --check writes nothing


def test_new_kept_data_makes_the_block_stale(tmp_path):
    kept_file(tmp_path, "failover-2026-12-05.jsonl", [failover_row("switchover", 800, "2026-12-05T10:01:00")], HEADER)
    doc = doc_with(tmp_path, FAILOVER_MARKER)
    docs.run([doc], tmp_path, check=False)
    kept_file(tmp_path, "failover-2026-12-06.jsonl", [failover_row("switchover", 900, "2026-12-06T10:01:00")], HEADER)
    assert docs.run([doc], tmp_path, check=True)[0] == 1


# ---------------------------------------------------------------- bad input: one line, exit 2


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = reports_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_document_is_one_line_and_exit_2(tmp_path, capsys):
    code, _, err = _cli(capsys, "docs", "--root", str(tmp_path), str(tmp_path / "nope.md"))
    assert code == 2 and err.count("\n") == 1 and "nope.md: no such document" in err


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json at all\n", "reports/measured/failover-2026-12-05.jsonl:1: not a JSON object"),
        (
            json.dumps(HEADER) + "\n" + json.dumps({"kind": "failover", "fault": "switchover"}) + "\n",
            "reports/measured/failover-2026-12-05.jsonl:2: failover row without fault or gaps_ms",
        ),
    ],
)
def test_malformed_kept_row_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "reports" / "measured" / "failover-2026-12-05.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    doc = doc_with(tmp_path, FAILOVER_MARKER)
    before = doc.read_text()
    code, out, err = _cli(capsys, "docs", "--root", str(tmp_path), str(doc))
    assert code == 2 and err == f"docs: {message}\n" and out == ""
    assert doc.read_text() == before


def test_a_pattern_outside_the_repository_is_refused(tmp_path, capsys):
    doc = doc_with(tmp_path, "<!-- generated: dr-table from ../elsewhere/dr-*.jsonl -->")
    code, _, err = _cli(capsys, "docs", "--check", "--root", str(tmp_path), str(doc))
    assert code == 2 and "must be relative to the repository" in err


# ---------------------------------------------------------------- keep


def _bench_dir(tmp_path: Path) -> Path:
    bench = tmp_path / "out" / "bench-20261205-100000"
    bench.mkdir(parents=True)
    rows = [
        failover_row("switchover", 800, "2026-12-05T10:01:00"),
        {"kind": "alert", "alert": "not kept with failover", "at": "2026-12-05T10:01:30"},
        failover_row("graceful_stop", 900, "2026-12-05T10:03:00"),
    ]
    (bench / "measurements.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    (bench / "bench.json").write_text(
        json.dumps({"config": {"runs": 5, "faults": ["switchover", "graceful_stop"]}, "env": {"DPG_TTL": "20"}})
    )
    return bench


def test_keep_copies_a_datasets_rows_with_how_they_were_measured(tmp_path, capsys):
    bench, out = _bench_dir(tmp_path), tmp_path / "measured"
    code, stdout, _ = _cli(capsys, "keep", "failover", "--from", str(bench / "measurements.jsonl"), "--out", str(out))
    assert code == 0 and "kept 2 failover row(s)" in stdout and "1 malformed line(s)" in stdout
    assert "measured 2026-12-05T10:01:00 to 2026-12-05T10:03:00" in stdout
    lines = [json.loads(line) for line in (out / "failover-2026-12-05.jsonl").read_text().splitlines()]
    header, rows = lines[0], lines[1:]
    assert header["kind"] == "kept" and header["rows"] == 2
    assert header["command"] == "python -m reports bench --runs 5 --faults switchover,graceful_stop"
    assert header["env"] == {"DPG_TTL": "20"}
    assert (header["first_at"], header["last_at"]) == ("2026-12-05T10:01:00", "2026-12-05T10:03:00")
    assert [r["fault"] for r in rows] == ["switchover", "graceful_stop"]
    # the same day again: a second file, the first untouched
    _cli(capsys, "keep", "failover", "--from", str(bench / "measurements.jsonl"), "--out", str(out))
    assert sorted(p.name for p in out.iterdir()) == ["failover-2026-12-05-run2.jsonl", "failover-2026-12-05.jsonl"]


def test_keep_since_and_command(tmp_path, capsys):
    bench, out = _bench_dir(tmp_path), tmp_path / "measured"
    src = str(bench / "measurements.jsonl")
    code, _, _ = _cli(
        capsys, "keep", "failover", "--from", src, "--out", str(out), "--since", "2026-12-05T10:02", "--command", "x y"
    )
    (path,) = out.iterdir()
    header, *rows = (json.loads(line) for line in path.read_text().splitlines())
    assert code == 0 and header["command"] == "x y" and [r["fault"] for r in rows] == ["graceful_stop"]


def test_keep_says_why_not(tmp_path, capsys):
    bench, out = _bench_dir(tmp_path), str(tmp_path / "measured")
    src = str(bench / "measurements.jsonl")
    code, _, err = _cli(capsys, "keep", "nonsense", "--from", src, "--out", out)
    assert code == 2 and "unknown dataset 'nonsense'" in err
    code, _, err = _cli(capsys, "keep", "dr", "--from", src, "--out", out)
    assert code == 1 and err.startswith("keep: no dr rows (kinds dr) in ")
    code, _, err = _cli(capsys, "keep", "alert", "--from", src, "--out", out)
    assert code == 2 and "pass --command, e.g. --command 'pytest suites/monitoring'" in err
    code, _, err = _cli(capsys, "keep", "alert", "--from", str(tmp_path / "missing.jsonl"), "--out", out)
    assert code == 2 and "missing.jsonl: no such file" in err
    assert not (tmp_path / "measured").exists()


def test_keep_layers_copies_the_json_and_its_markdown(tmp_path):
    src = tmp_path / "out" / "layers-20261205-100000"
    src.mkdir(parents=True)
    rows = [{"engine": "pgbench", "workload": "read", "layer": "direct", "clients": 8, "seconds": 10}]
    (src / "layers.json").write_text(json.dumps({"meta": {"started": "2026-12-05T10:00:00"}, "rows": rows}))
    (src / "layers.md").write_text("# table\n")
    path, n, _ = measured.keep_rows(DATASETS["layers"], src / "layers.json", out_dir=tmp_path / "m", root=tmp_path)
    assert (path.name, n) == ("layers-2026-12-05.json", 1)
    meta = json.loads(path.read_text())["meta"]
    assert meta["command"] == "python -m reports layers --seconds 10 --clients 8 --locust-seconds 0"
    assert path.with_suffix(".md").read_text() == "# table\n"


# ---------------------------------------------------------------- every block from one tiny row set

AT = "2026-12-05T10:00:00"
BLOCK_FIXTURES = {
    "etcd-table": (
        "dcs_outage",
        [
            failover_row("etcd_member_stopped", 140, AT, kind="dcs_outage", leader_before="p1", leader_after="p1")
            | {"reads_during": {"ok": 269, "fail": 0}, "raft_leaderless_s": None, "max_primaries": 1},
            failover_row("quorum_loss_failsafe_off", 4000, AT, kind="dcs_outage", leader_before="p1", leader_after="p2")
            | {"no_primary_after_s": 8.6, "writes_resumed_after_heal_s": 1.8, "reads_during": {"ok": 262, "fail": 0}},
        ],
        ["| etcd_member_stopped | 1 | none | 140 / – | never | – | 269 / 0 | – | 1 | 0 |", "| 1 of 1 runs |"],
    ),
    "pgbouncer-table": (
        "pgbouncer",
        [
            {
                "kind": "pgbouncer_share",
                "fault": "switchover",
                "haproxy_gap_ms": 2228,
                "pgbouncer_gap_ms": 1585,
                "share_ms": -643,
                "bound_ms": 1000,
            },
            {"kind": "pgbouncer_refusal", "clients": 55, "refusal_s": 0.002, "error": "FATAL: no more connections"},
            {
                "kind": "pgbouncer_queue",
                "clients": 50,
                "pool_size": 20,
                "hold_s": 1,
                "slowest_s": 3.3,
                "max_cl_waiting": 43,
                "failed": 0,
            },
            {"kind": "pgbouncer_restart", "gap_ms": 1500, "bound_ms": 5000, "failed": 19},
        ],
        [
            "2228 / 1585 ms (pooler share -643 ms)",
            "client 56 (max_client_conn = 55)",
            "refused in 2 ms",
            "up to 43 clients waiting; slowest 3.3 s",
            "19 failed writes, gap 1500 ms",
        ],
    ),
    "citus-table": (
        "citus",
        [
            {
                "kind": "citus_worker_down",
                "fault": "pause",
                "multi_shard_error_ms": 5014.9,
                "multi_shard_error": "could not establish any connections",
                "healthy_router": {"failed": 0, "p95_ms": 2.9},
                "recovered_s": 0.11,
            },
            {
                "kind": "citus_coordinator_down",
                "fault": "stop",
                "via": "citus-worker-1",
                "count_ms": 131.0,
                "join_ms": 145.0,
                "recovered_s": 0.65,
            },
            {
                "kind": "citus_latency",
                "phase": "latency",
                "query": "router worker-2",
                "toxic_ms": 200,
                "n": 20,
                "failed": 0,
                "p50_ms": 201.0,
                "p95_ms": 203.4,
                "max_ms": 210.0,
            },
            {"kind": "citus_balance", "placements": {}, "moves": 0},
        ],
        [
            "| pause | 1 | 5014.9 | `could not establish any connections` | 0 / 2.9 | 0.11 |",
            "| stop | 1 | citus-worker-1 | 131.0 | 145.0 | 0.65 |",
            "| latency | router worker-2 | 200 | 1 | 20 | 0 |",
        ],
    ),
    "vector-recovery-table": (
        "vector_recovery",
        [
            {
                "kind": "vector_recovery",
                "fault": "docker restart",
                "searches_back_s": 0.7,
                "recall_before": 0.958,
                "recall_after": 0.958,
                "rows": 10000,
                "fingerprint_unchanged": True,
            }
        ],
        ["| docker restart | 1 | 0.7 | 0.958 → 0.958 | 10,000 | 1 of 1 |"],
    ),
    "vector-search-table": (
        "vector_bench",
        [
            {
                "kind": "vector_bench",
                "at": AT,
                "mode": "hnsw",
                "n": 2000,
                "p50_ms": 0.42,
                "p95_ms": 0.56,
                "p99_ms": 0.75,
                "max_ms": 2.71,
                "ops_per_s": 2276,
                "claim_ms": 5.0,
                "meets_claim_p95": True,
            },
            {"kind": "vector_recall", "build": 0, "ef_search": 40, "recall": 0.99, "worst": 0.6},
            {"kind": "vector_recall", "build": 1, "ef_search": 40, "recall": 0.92, "worst": 0.0},
        ],
        [
            "| hnsw | 2026-12-05 10:00 | 2000 | 0.42 | 0.56 | 0.75 | 2.71 | 2276 | yes (< 5.0 ms) |",
            "| 40 | 2 | 0.920 | 0.955 | 0.990 | 0.00–0.60 |",
        ],
    ),
    "redis-table": (
        "redis_cut",
        [
            {
                "kind": "redis_cut",
                "cut": "Disconnected(dpg-redis)",
                "n": 826,
                "failed": 0,
                "p50_ms": 1.4,
                "p95_ms": 10.4,
                "max_ms": 63,
                "fallbacks": 12,
                "bypassed": 904,
                "bound_ms": 800,
            }
        ],
        ["| `Disconnected(dpg-redis)` | 1 | 826 | 0 | 1.4 / 10.4 / 63 | 12 + 904 | 800 |"],
    ),
    "alerts-table": (
        "alert",
        [
            {
                "kind": "alert",
                "alert": "RedisDown",
                "labels": {"job": "redis"},
                "pending_after_s": 6.6,
                "fired_after_s": 11.6,
                "fire_within_s": 27,
                "resolved_after_s": 4.6,
                "resolve_within_s": 23,
            }
        ],
        ["| RedisDown | job=redis | 1 | 6.6 | 11.6 | 27 | 4.6 | 23 |"],
    ),
    "dr-table": (
        "dr",
        [
            {"kind": "dr", "drill": "total loss", "rto_s": 9.6, "rpo_s": 5.1, "phases": {"destroy": 2.0}},
            {"kind": "dr", "drill": "total loss", "rto_s": 11.0, "rpo_s": 4.0, "phases": {"destroy": 2.4}},
        ],
        ["| total loss | 2 | 9.6–11.0 | 4.0–5.1 | destroy 2.0–2.4 |"],
    ),
    "load-failover-table": (
        "load_failover",
        [
            {
                "kind": "failover_load",
                "at": AT,
                "fault": "switchover",
                "variant": "load 50%",
                "load": {
                    "paths": {"haproxy": {"transactions": 9000, "restarts": 1}, "pgbouncer": {"transactions": 440}},
                    "offered_tx_s": 800,
                    "generator_cores": 0.04,
                },
                "cpu": {"top": [["dpg-patroni-2", 0.61]]},
            }
        ],
        ["| 2026-12-05 10:00 | switchover [load 50%] | 800 | 9440 | 1 | 0.04 | dpg-patroni-2 0.61 |"],
    ),
    "hosts-table": (  # one host next to three: only faults measured on both, the ratio of the p50s
        "failover",
        [
            failover_row("switchover", 1000, AT),
            failover_row("switchover", 900, AT, variant="3 hosts"),
            failover_row("hard_kill", 21000, AT),
        ],
        ["| switchover | haproxy | 1000 | 1000 | 1 | 900 | 900 | 1 | 0.90 |"],
    ),
    "distortion-table": (
        "txn_distortion",
        [
            {
                "kind": "txn_distortion",
                "fault": "switchover",
                "n": 1,
                "without_ms": {"haproxy": 1000},
                "with_ms": {"haproxy": 1200},
                "delta_ms": {"haproxy": 200},
            },
            {
                "kind": "txn_distortion",
                "fault": "switchover",
                "n": 1,
                "without_ms": {"haproxy": 1100},
                "with_ms": {"haproxy": 1000},
                "delta_ms": {"haproxy": -100},
            },
            {
                "kind": "txn_distortion",
                "fault": "switchover",
                "n": 1,
                "without_ms": {"haproxy": 900},
                "with_ms": {"haproxy": 1300},
                "delta_ms": {"haproxy": 400},
            },
        ],
        ["| haproxy | 3 | 1000 / 1100 | 1200 / 1300 | +200 | 2 of 3 |"],
    ),
    "soft-fault-headline": (
        "failover",
        [
            failover_row("switchover", 1400, AT, variant="load 50%"),
            failover_row("switchover", 1600, AT, variant="load 50%"),
            failover_row("switchover", 900, AT),
            failover_row("switchover", 1900, AT, variant="first after bootstrap"),
            failover_row("switchover", 2200, AT, variant="first after bootstrap, load 50%"),
            failover_row("postmaster_crash", 700, AT),
            failover_row("hard_kill", 21000, AT),  # not a soft fault: not in the headline
            failover_row("switchover", 5000, AT, variant="synchronous_mode"),  # another population
        ],
        [
            "| switchover | haproxy | 1400 / 1600 (2) | **missed** | 900 / 900 (1) | met | 1900 / 2200 |",
            "| postmaster_crash | pgbouncer | – | – | 700 / 700 (1) | met | – / – |",
            "target p95 ≤ 1500 | idle: p50 / p95 ms (n) | target p95 ≤ 1000 |",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(BLOCK_FIXTURES))
def test_every_block_renders_its_rows(tmp_path, name):
    dataset, rows, expected = BLOCK_FIXTURES[name]
    header = {"kind": "kept", "dataset": dataset, "command": DATASETS[dataset].command}
    kept_file(tmp_path, f"{dataset}-2026-12-05.jsonl", [{"at": AT} | r for r in rows], header)
    doc = doc_with(tmp_path, f"<!-- generated: {name} from reports/measured/{dataset}-*.jsonl -->")
    assert docs.run([doc], tmp_path, check=False)[0] == 0
    text = doc.read_text()
    assert f"`reports/measured/{dataset}-2026-12-05.jsonl`: {len(rows)} rows measured 2026-12-05 10:00" in text
    for cell in expected:
        assert cell in text, f"{cell!r} not in:\n{text}"


def test_every_block_has_a_fixture():
    assert set(docs.BLOCKS) - {"failover-table", "layers-table"} == set(BLOCK_FIXTURES)


def test_the_soft_fault_headline_keeps_other_faults_and_settings_out(tmp_path):
    """Only stock-settings soft-fault rows count: a synchronous_mode switchover or a hard kill would move the p95."""
    dataset, rows, _ = BLOCK_FIXTURES["soft-fault-headline"]
    header = {"kind": "kept", "dataset": dataset, "command": DATASETS[dataset].command}
    kept_file(tmp_path, "failover-2026-12-05.jsonl", [{"at": AT} | r for r in rows], header)
    doc = doc_with(tmp_path, "<!-- generated: soft-fault-headline from reports/measured/failover-*.jsonl -->")
    assert docs.run([doc], tmp_path, check=False)[0] == 0
    table = [ln for ln in doc.read_text().splitlines() if ln.startswith("| ")]
    assert not [ln for ln in table if "hard_kill" in ln or "5000" in ln], table
