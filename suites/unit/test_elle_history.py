"""The history contract: what the loader accepts, what it rejects (one line, naming the op), and what it
carries through (server keys, fault marks)."""

from __future__ import annotations

from typing import Any

import pytest

from chaos.checkers.elle import HistoryError, check
from chaos.checkers.elle.history import INFO, OK, load
from suites.unit.elle_dsl import History

pytestmark = pytest.mark.unit


def _pair(
    value: list[Any], *, index: int = 0, process: int = 0, outcome: str = "ok", done: Any = None
) -> list[dict[str, Any]]:
    inv = [[m[0], m[1], None] if m[0] == "r" else list(m) for m in value]
    return [
        {"index": index, "time": 0, "process": process, "type": "invoke", "f": "txn", "value": inv},
        {
            "index": index + 1,
            "time": 1,
            "process": process,
            "type": outcome,
            "f": "txn",
            "value": value if done is None else done,
        },
    ]


GOOD = _pair([["append", "x", 1]])

BAD: list[tuple[str, list[Any], str]] = [
    ("not an object", [[1, 2]], "op #0: an operation is a JSON object"),
    ("no index", [{"time": 0, "process": 0, "type": "invoke", "f": "txn", "value": []}], 'non-integer "index"'),
    ("index goes back", [{**GOOD[0], "index": 5}, GOOD[1]], "index 1 is not greater than the previous index 5"),
    ("no time", [{**GOOD[0], "time": None}], 'non-integer "time"'),
    ("process is text", [{**GOOD[0], "process": "p1"}], 'non-integer "process"'),
    ("bad type", [{**GOOD[0], "type": "done"}], '"type" must be invoke, ok, fail or info'),
    ("completion without invocation", [GOOD[1]], "ok completion at index 1 of process 0 has no invocation"),
    ("two invocations pending", [GOOD[0], {**GOOD[0], "index": 1}], "has not completed"),
    ("micro-op shape", _pair([["append", "x"]]), "micro-op 0 must be [f, key, value]"),
    ("unknown f", _pair([["write", "x", 1]]), 'f must be "append" or "r"'),
    ("float key", _pair([["append", 1.5, 1]]), "key must be a string or an integer"),
    ("bool key", _pair([["append", True, 1]]), "key must be a string or an integer"),
    ("text value", _pair([["append", "x", "1"]]), "appended value must be a 64-bit integer"),
    ("huge value", _pair([["append", "x", 2**64]]), "appended value must be a 64-bit integer"),
    ("read of text", _pair([["r", "x", ["1"]]]), "a read is null or a list of integers"),
    ("value not a list", _pair([["r", "x", None]], done={"r": 1}), "value must be a list of micro-ops"),
    (
        "completion differs",
        _pair([["append", "x", 1]], done=[["append", "x", 2]]),
        "completion does not match its invocation at micro-op 0",
    ),
    (
        "completion shorter",
        _pair([["append", "x", 1], ["r", "x", [1]]], done=[["append", "x", 1]]),
        "completion does not match its invocation at micro-op 1",
    ),
    ("duplicate append", GOOD + _pair([["append", "x", 1]], index=2, process=1), 'value 1 appended to key "x" twice'),
]


@pytest.mark.parametrize(("what", "ops", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_naming_the_op(what: str, ops: list[Any], message: str) -> None:
    with pytest.raises(HistoryError) as err:
        check(ops, "serializable")
    text = str(err.value)
    assert message in text, text
    assert "\n" not in text and text.startswith("op #")


def test_marks_are_ignored_by_the_analysis_and_need_no_txn_fields() -> None:
    ops = [
        {"index": 0, "process": "nemesis", "type": "info", "f": "kill", "value": "pg-1"},
        {"index": 1, "f": "leader-change", "value": {"to": "pg-2"}},
        *(dict(op, index=op["index"] + 2) for op in GOOD),
    ]
    o = load(ops)
    assert [m.index for m in o.marks] == [0, 1] and o.n == 1


def test_ok_read_of_null_is_the_empty_list_as_in_elle() -> None:
    o = load(_pair([["r", "x", None]]))
    assert o.txn_value(0) == [["r", "x", []]]


def test_fail_and_info_may_complete_with_null_value() -> None:
    ops = _pair([["append", "x", 1]], outcome="info", done=None)
    ops[1]["value"] = None
    o = load(ops)
    assert o.outcome[0] == INFO and o.txn_value(0) == [["append", "x", 1]]


def test_an_invocation_that_never_completes_counts_as_info() -> None:
    h = History().invoke(0, "ax1").txn(1, "rx1")
    o = load(h.ops)
    assert o.dangling == 1 and o.outcome[0] == INFO and o.outcome[1] == OK
    assert h.check("serializable").valid is True  # its append was seen: it happened, nothing wrong


def test_extra_keys_are_carried_to_the_reported_operations() -> None:
    h = History()
    h.invoke(0, "ax1 ry1").invoke(1, "ax2 ay1")
    h.complete(0, node="pg-2", server="172.25.0.4:5432", in_recovery=True, timeline=3, lsn="0/3000060")
    h.complete(1, node="pg-1", path="haproxy-rw").txn(2, "rx12")
    (case,) = h.check("serializable").anomalies["G1c"]
    ops = {op["index"]: op for op in case["cycle"]}
    assert ops[2]["server"] == "172.25.0.4:5432" and ops[2]["in_recovery"] is True and ops[2]["timeline"] == 3
    assert ops[3]["path"] == "haproxy-rw"
    assert 'server="172.25.0.4:5432"' in case["explanation"] and 'node="pg-1"' in case["explanation"]


def test_integer_and_string_keys_are_distinct() -> None:
    ops = _pair([["append", 1, 1]]) + _pair([["r", "1", [1]]], index=2, process=1)
    o = load(ops)
    assert o.keys == [1, "1"]
