"""The EDN -> JSONL converter used to re-check Elle's published histories (own inline EDN here)."""

from __future__ import annotations

import pytest

from chaos.checkers.elle import check
from chaos.checkers.elle.edn import EdnError, convert, read_all

pytestmark = pytest.mark.unit

EDN = """
; a G1c in Jepsen's shape, with a nemesis op and the odd EDN feature
{:index 0 :time 10 :type :invoke :process 0 :f :txn :value [[:append :p 1] [:r :q nil]]}
{:index 1 :time 11 :type :invoke :process 1 :f :txn :value [[:append :p 2] [:append :q 1]]}
{:index 2, :time 12, :type :info, :process :nemesis, :f :kill, :value #{"n1"}}
{:index 3 :time 13 :type :ok :process 0 :f :txn :value [[:append :p 1] [:r :q [1]]]}
{:index 4 :time 14 :type :ok :process 1 :f :txn :value [[:append :p 2] [:append :q 1]] #_ :ignored #_ 1}
{:index 5 :time 15 :type :invoke :process 2 :f :txn :value [[:r :p nil]] :error "none" :node "n2"}
{:index 6 :time 16 :type :ok :process 2 :f :txn :value [[:r :p [1 2]]] :note \\x}
"""


def test_reads_jepsen_ops() -> None:
    ops = convert(EDN)
    assert ops[0] == {
        "index": 0,
        "time": 10,
        "process": 0,
        "type": "invoke",
        "f": "txn",
        "value": [["append", "p", 1], ["r", "q", None]],
    }
    assert ops[2]["process"] == "nemesis" and ops[2]["value"] == ["n1"]
    assert ops[5]["node"] == "n2" and ops[5]["error"] == "none"
    assert ops[6]["note"] == "x"


def test_converted_history_checks_like_elle() -> None:
    v = check(convert(EDN), "serializable")
    assert v.anomaly_types == ("G1c",) and v.not_ == ("read-committed",)
    assert v.anomalies["G1c"][0]["marks"][0]["f"] == "kill"


def test_defaults_for_elle_histories_without_time_process_or_f() -> None:
    (inv, ok) = convert(
        "[{:index 4 :type :invoke :value [[:append [:anti 1] 3]]} {:index 5 :type :ok :value [[:append [:anti 1] 3]]}]"
    )
    assert (inv["time"], inv["process"], inv["f"]) == (4, 0, "txn")
    assert ok["value"] == [["append", '["anti", 1]', 3]]


def test_numbers_and_symbols() -> None:
    assert read_all('[1 -2 3N 1.5 nil true false sym :kw "s\\"q"]') == [
        1,
        -2,
        3,
        1.5,
        None,
        True,
        False,
        "sym",
        "kw",
        's"q',
    ]


@pytest.mark.parametrize("bad", ["{:a 1", "]", "[1 2"])
def test_malformed_edn_is_an_error(bad: str) -> None:
    with pytest.raises(EdnError):
        read_all(bad)
