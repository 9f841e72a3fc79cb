"""Explanations read like Elle's ("T1 < T2, because ...; However, ...: a contradiction!"), name the
operations and where they ran, and the pictures and reports exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chaos.checkers.elle import explain, plot
from suites.unit.elle_dsl import History, concurrent

pytestmark = pytest.mark.unit


def test_g1c_is_explained_step_by_step() -> None:
    (case,) = concurrent("ax7 ry7", "ax8 ay7", "rx78").check("read-committed").anomalies["G1c"]
    assert case["explanation"].splitlines() == [
        "G1c",
        "Let:",
        '  T1 = index 4 (invoked at 1), process 1, ok: [["append", "x", 8], ["append", "y", 7]]',
        '  T2 = index 3 (invoked at 0), process 0, ok: [["append", "x", 7], ["r", "y", [7]]]',
        "Then:",
        '  - T1 < T2, because T2 read [7] of key "y", which ends with T1\'s append of 7.',
        '  - However, T2 < T1, because T1 appended 8 after T2 appended 7 to key "x": a contradiction!',
    ]
    assert [s["type"] for s in case["steps"]] == ["wr", "ww"]
    assert case["steps"][1] == {"type": "ww", "key": "x", "value": 7, "value'": 8, "a-mop-index": 0, "b-mop-index": 0}


def test_rw_from_a_read_names_the_list_read() -> None:
    # the brief's wording: "T1 < T2 because T1 read [1 2] of key 7 and T2 appended 3 after it"
    h = History()
    h.invoke(0, "ax1 ax2").complete(0)
    h.ops.append(
        {
            "index": 2,
            "time": 2,
            "process": 1,
            "type": "invoke",
            "f": "txn",
            "value": [["r", 7, None], ["append", "w", 1]],
        }
    )
    h.ops.append(
        {
            "index": 3,
            "time": 3,
            "process": 2,
            "type": "invoke",
            "f": "txn",
            "value": [["append", 7, 3], ["r", "w", None]],
        }
    )
    h.ops.append(
        {"index": 4, "time": 4, "process": 1, "type": "ok", "f": "txn", "value": [["r", 7, [1, 2]], ["append", "w", 1]]}
    )
    h.ops.append(
        {"index": 5, "time": 5, "process": 2, "type": "ok", "f": "txn", "value": [["append", 7, 3], ["r", "w", []]]}
    )
    h.ops.append({"index": 6, "time": 6, "process": 3, "type": "invoke", "f": "txn", "value": [["append", 7, 1]]})
    h.ops.append({"index": 7, "time": 7, "process": 3, "type": "ok", "f": "txn", "value": [["append", 7, 1]]})
    h.ops.append({"index": 8, "time": 8, "process": 4, "type": "invoke", "f": "txn", "value": [["append", 7, 2]]})
    h.ops.append({"index": 9, "time": 9, "process": 4, "type": "ok", "f": "txn", "value": [["append", 7, 2]]})
    (case,) = h.check("serializable").anomalies["G2-item"]
    text = case["explanation"]
    assert re.search(
        r"(T\d) < (T\d), because \1 read \[1 2\] of key 7 and \2 appended 3 after it: "
        r"\1 did not observe \2's append",
        text,
    ), text
    assert re.search(
        r"(T\d) < (T\d), because \1 read the initial \(empty\) state \[\] of key \"w\", and \2 "
        r"appended 1 to it: \1 did not observe \2's append",
        text,
    ), text


def test_realtime_step_names_indices_and_the_gap() -> None:
    h = History().txn(0, "ak1").txn(1, "ak2").txn(2, "rk1").txn(3, "rk12")
    (case,) = h.check("strict-serializable").anomalies["G-single-item-realtime"]
    assert "completed at index 3, 0.001 seconds before the invocation of" in case["explanation"]
    rt = next(s for s in case["steps"] if s["type"] == "realtime")
    assert (rt["a-index"], rt["b-invoke-index"]) == (3, 4)


def test_process_step() -> None:
    h = History().txn(0, "ak1").txn(1, "ak2").txn(1, "rk1").txn(2, "rk12")
    (case,) = h.check("strong-session-snapshot-isolation").anomalies["G-single-item-process"]
    assert "because process 1 executed T" in case["explanation"]
    assert {"type": "process", "process": 1} in case["steps"]


def test_non_cycle_anomalies_are_explained() -> None:
    v = History().txn(0, "ae3", "fail").txn(1, "re3").txn(2, "af1").txn(3, "rf1").check("read-committed")
    (case,) = v.anomalies["G1a"]
    assert case["explanation"] == (
        'index 3 (process 1) read [3] of key "e", which contains 3, appended by '
        "index 1 (process 0), which failed: an aborted read."
    )


def test_report_and_plot(tmp_path: Path) -> None:
    v = concurrent("am5 an5", "am6 rn", "rm56").check("serializable")
    text = explain(v)
    assert text.startswith("txn-check: NOT VALID under serializable\n")
    assert "rules out: consistent-view, repeatable-read (and so also" in text
    (png,) = plot(v, tmp_path)
    assert png.name == "G-single-item-1.png" and png.stat().st_size > 5000


def test_verdict_is_frozen_and_serialisable() -> None:
    import json

    v = concurrent("rg ah1", "rh ag1").check("serializable")
    with pytest.raises(AttributeError):
        v.valid = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        v.anomalies["G2-item"] = ()  # type: ignore[index]
    assert json.loads(json.dumps(v.to_dict()))["anomaly-types"] == ["G2-item"]
