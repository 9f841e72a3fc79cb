"""`python -m chaos txn-check`: the fixed contract (exit 0 valid, 1 not valid or unknown, 2 bad input with
one line and no traceback; --json's shape; --plot-dir)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.checkers.elle import cli
from suites.unit.elle_dsl import History, concurrent, serial

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, ops: list[Any]) -> Path:
    path.write_text("".join(json.dumps(op) + "\n" for op in ops))
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = cli.main(argv)
    except SystemExit as e:  # argparse usage errors
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def test_valid_history_exits_0_with_the_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path / "h.jsonl", serial("ax1", "rx1 ay2", "rx1 ry2").ops)
    rc, out, _ = _run([str(f), "--model", "strict-serializable", "--json"], capsys)
    d = json.loads(out)
    assert rc == 0
    assert {"valid", "anomaly-types", "not", "anomalies"} <= set(d)
    assert (d["valid"], d["anomaly-types"], d["not"], d["anomalies"]) == (True, [], [], {})


def test_invalid_history_exits_1_with_named_anomalies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path / "h.jsonl", concurrent("rg ah1", "rh ag1").ops)
    rc, out, _ = _run([str(f), "--model", "serializable", "--json"], capsys)
    d = json.loads(out)
    assert rc == 1 and d["valid"] is False
    assert d["anomaly-types"] == ["G2-item"] and d["not"] == ["repeatable-read"]
    (case,) = d["anomalies"]["G2-item"]
    assert case["explanation"].count("did not observe") == 2


def test_same_history_valid_under_a_weaker_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path / "h.jsonl", concurrent("rg ah1", "rh ag1").ops)
    assert _run([str(f), "--model", "snapshot-isolation"], capsys)[0] == 0


def test_unknown_verdict_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path / "h.jsonl", serial("an1").ops)
    rc, out, _ = _run([str(f), "--json"], capsys)
    assert rc == 1 and json.loads(out)["valid"] == "unknown"


def test_human_report_explains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path / "h.jsonl", concurrent("ax7 ry7", "ax8 ay7", "rx78").ops)
    rc, out, _ = _run([str(f), "--model", "read-committed"], capsys)
    assert rc == 1
    assert out.startswith("txn-check: NOT VALID under read-committed")
    assert "rules out: read-committed" in out and "G1c: 1" in out and "a contradiction!" in out


def test_plot_dir_gets_one_png_per_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path / "h.jsonl", concurrent("am5 an5", "am6 rn", "rm56").ops)
    rc, _, _ = _run([str(f), "--model", "serializable", "--plot-dir", str(tmp_path / "plots")], capsys)
    pngs = list((tmp_path / "plots").glob("*.png"))
    assert rc == 1 and [p.name for p in pngs] == ["G-single-item-1.png"]
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


BAD_FILES: list[tuple[str, str, str]] = [
    ("bad JSON", '{"index": 0, "time": 0,\n', "line 1: bad JSON"),
    ("blank lines keep numbering", "\n\n{nope}\n", "line 3: bad JSON"),
    (
        "missing field",
        '{"index": 0, "time": 0, "type": "invoke", "f": "txn", "value": []}\n',
        'line 1: missing or non-integer "process"',
    ),
    (
        "ok without invocation",
        '{"index": 0, "time": 0, "process": 3, "type": "ok", "f": "txn", "value": [["append", "x", 1]]}\n',
        "line 1: ok completion at index 0 of process 3 has no invocation",
    ),
    ("not UTF-8", b"\xff", "is not UTF-8"),  # bytes: a lone surrogate in a parameter crashed allure's writer
]


@pytest.mark.parametrize(("what", "text", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str, text: str | bytes, message: str
) -> None:
    f = tmp_path / "h.jsonl"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    rc, out, err = _run([str(f), "--json"], capsys)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["/nonexistent/h.jsonl"], "cannot read /nonexistent/h.jsonl"),
        (["h.jsonl", "--model", "snapshot"], "unknown model 'snapshot'"),
        (["h.jsonl", "--time-limit", "0"], "must be > 0"),
        ([], "the following arguments are required: history"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    rc, _, err = _run(argv, capsys)
    assert rc == 2 and err.count("\n") == 1 and message in err, err


def test_python_dash_m_chaos_txn_check(tmp_path: Path) -> None:
    f = _write(tmp_path / "h.jsonl", concurrent("rg ah1", "rh ag1").ops)
    env_cmd = [sys.executable, "-m", "chaos", "txn-check"]
    ok = subprocess.run(
        [*env_cmd, str(f), "--model", "snapshot-isolation", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0 and json.loads(ok.stdout)["valid"] is True
    bad = subprocess.run(
        [*env_cmd, str(f), "--model", "nope"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    usage = subprocess.run(
        [*env_cmd, str(f), "--time-limit", "x"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1


# Arbitrary JSON lines, mostly shaped like operations: the command must answer 0, 1 or 2, never crash.
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(["x", "y", "r", "append"]),
    st.floats(allow_nan=False, allow_infinity=False),
)
_mop = st.one_of(
    st.tuples(
        st.sampled_from(["append", "r", "w"]),
        st.one_of(st.sampled_from(["x", "y"]), st.integers(0, 2), _scalar),
        st.one_of(st.integers(0, 4), st.none(), st.lists(st.integers(0, 4), max_size=4), _scalar),
    ).map(list),
    st.lists(_scalar, max_size=4),
)
_op = st.fixed_dictionaries(
    {
        "index": st.one_of(st.integers(0, 40), _scalar),
        "time": st.one_of(st.integers(0, 9), _scalar),
        "process": st.one_of(st.integers(0, 2), st.just("nemesis"), _scalar),
        "type": st.sampled_from(["invoke", "ok", "fail", "info", "other"]),
        "f": st.sampled_from(["txn", "txn", "kill"]),
        "value": st.one_of(st.lists(_mop, max_size=3), _scalar),
    }
)


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_op, _scalar, st.lists(_scalar, max_size=2)), max_size=12))
def test_any_input_gets_an_exit_status_never_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, ops: list[Any]
) -> None:
    f = tmp_path_factory.mktemp("fuzz") / "h.jsonl"
    _write(f, ops)
    assert cli.main([str(f), "--json", "--time-limit", "0.5"]) in (0, 1, 2)


def test_fault_marks_appear_next_to_the_anomaly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = History().mark("kill", "pg-1").txn(0, "ak1").txn(1, "ak2").txn(2, "rk1").mark("heal", "pg-1")
    f = _write(tmp_path / "h.jsonl", h.txn(3, "rk12").ops)
    rc, out, _ = _run([str(f), "--json"], capsys)
    (case,) = json.loads(out)["anomalies"]["G-single-item-realtime"]
    assert rc == 1
    assert [(m["when"], m["f"]) for m in case["marks"]] == [("before", "kill"), ("after", "heal")]
    assert (
        'Fault marks: before: index 0 nemesis kill "pg-1"; after: index 7 nemesis heal "pg-1".' in case["explanation"]
    )
