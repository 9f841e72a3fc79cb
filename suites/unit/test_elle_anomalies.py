"""Every anomaly class on a hand-made history: found under its exact Elle name, ruling out the model
Elle says it rules out, and not reported under a model that allows it.

The shapes follow Elle's own unit cases (test/elle/list_append_test.clj) with our own keys and
values; the expected `not` sets are the ones Elle's tests state for the same shapes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from suites.unit.elle_dsl import History, concurrent, indices, serial

pytestmark = pytest.mark.unit

Build = Callable[[], History]


def _g0_process() -> History:
    # one process appends z=2 then z=1, but a read shows [1 2]: its later txn wrote first
    return History().txn(0, "az2").txn(0, "az1").txn(1, "rz12")


def _g0_realtime() -> History:
    return History().txn(0, "az2").txn(1, "az1").txn(2, "rz12")


def _g1c_process() -> History:
    # a process reads w=[5] before its own next transaction appends 5
    return History().txn(0, "rw5").txn(0, "aw5")


def _g1c_realtime() -> History:
    return History().txn(0, "rw5").txn(1, "aw5")


def _g_single_process() -> History:
    # process 1 appends k=2 then does not see it (reads [1]); [1 2] fixes the order
    return History().txn(0, "ak1").txn(1, "ak2").txn(1, "rk1").txn(2, "rk12")


def _g_single_realtime() -> History:
    return History().txn(0, "ak1").txn(1, "ak2").txn(2, "rk1").txn(3, "rk12")


def _g_nonadjacent_process() -> History:
    # T2 misses T3's append to u, T3's u is seen by T0, T0 misses T1's append to s, T1 -process-> T2
    return History().txn(0, "rs ru3").txn(1, "as3").txn(1, "ru").txn(2, "au3")


def _g_nonadjacent_realtime() -> History:
    # T1 -rw-> T2 -wr-> T3 -rw-> T4 -rt-> T1, placed so that no single-rw shortcut exists
    return (
        History()
        .invoke(3, "ra1 rb")
        .invoke(2, "aa1")
        .invoke(4, "ab1")
        .complete(4)
        .invoke(1, "ra")
        .complete(1)
        .complete(2)
        .complete(3)
    )


def _g2_process() -> History:
    # T1 misses x=1 of T2, T2 misses y=1 of T3, and T3 ran before T1 on process 0
    return History().invoke(1, "ax1 ry").txn(0, "ay1").txn(0, "rx").complete(1)


def _g2_realtime() -> History:
    return History().invoke(1, "ax1 ry").txn(2, "ay1").txn(0, "rx").complete(1)


def _g1a() -> History:
    # the last two transactions only give the graph an edge (else: empty-transaction-graph)
    return History().txn(0, "ae3", "fail").txn(1, "re3").txn(2, "af1").txn(3, "rf1")


def _lost_update() -> History:
    h = History().txn(0, "am1")
    return h.invoke(1, "rm1 am2").invoke(2, "rm1 am3").complete(1).complete(2)


# name, history, a model it violates, anomaly types reported, `not`, a model it satisfies
CASES: list[tuple[str, Build, str, tuple[str, ...], tuple[str, ...], str | None]] = [
    (
        "G0",
        lambda: concurrent("ap3 aq3", "ap4 aq4", "rp34 rq43"),
        "read-uncommitted",
        ("G0",),
        ("read-uncommitted",),
        None,
    ),
    (
        "G1c",
        lambda: concurrent("ax7 ry7", "ax8 ay7", "rx78"),
        "read-committed",
        ("G1c",),
        ("read-committed",),
        "read-uncommitted",
    ),
    (
        "G-single-item",
        lambda: concurrent("am5 an5", "am6 rn", "rm56"),
        "serializable",
        ("G-single-item",),
        ("consistent-view", "repeatable-read"),
        "read-committed",
    ),
    (
        "G-nonadjacent-item",
        lambda: concurrent("ac4", "rc4 rd", "ad4", "rd4 rc"),
        "snapshot-isolation",
        ("G-nonadjacent-item",),
        ("repeatable-read", "snapshot-isolation"),
        "read-committed",
    ),
    (
        "G2-item",
        lambda: concurrent("rg ah1", "rh ag1"),
        "serializable",
        ("G2-item",),
        ("repeatable-read",),
        "snapshot-isolation",
    ),
    (
        "G0-process",
        _g0_process,
        "strong-session-serializable",
        ("G0-process",),
        ("strong-session-read-uncommitted",),
        "serializable",
    ),
    (
        "G0-realtime",
        _g0_realtime,
        "strict-serializable",
        ("G0-realtime",),
        ("strong-read-uncommitted",),
        "strong-session-serializable",
    ),
    (
        "G1c-process",
        _g1c_process,
        "strong-session-snapshot-isolation",
        ("G1c-process",),
        ("strong-session-read-committed",),
        "serializable",
    ),
    (
        "G1c-realtime",
        _g1c_realtime,
        "strict-serializable",
        ("G1c-realtime",),
        ("strong-read-committed",),
        "strong-session-serializable",
    ),
    (
        "G-single-item-process",
        _g_single_process,
        "strong-session-snapshot-isolation",
        ("G-single-item-process",),
        ("strong-session-snapshot-isolation",),
        "serializable",
    ),
    (
        "G-single-item-realtime",
        _g_single_realtime,
        "strict-serializable",
        ("G-single-item-realtime",),
        ("strong-snapshot-isolation",),
        "strong-session-snapshot-isolation",
    ),
    (
        "G-nonadjacent-item-process",
        _g_nonadjacent_process,
        "strong-session-snapshot-isolation",
        ("G-nonadjacent-item-process",),
        ("strong-session-snapshot-isolation",),
        "serializable",
    ),
    (
        "G-nonadjacent-item-realtime",
        _g_nonadjacent_realtime,
        "strict-serializable",
        ("G-nonadjacent-item-realtime",),
        ("strong-snapshot-isolation",),
        "serializable",
    ),
    (
        "G2-item-process",
        _g2_process,
        "strong-session-serializable",
        ("G2-item-process",),
        ("strong-session-serializable",),
        "serializable",
    ),
    (
        "G2-item-realtime",
        _g2_realtime,
        "strict-serializable",
        ("G2-item-realtime",),
        ("strict-serializable",),
        "strong-snapshot-isolation",
    ),
    ("G1a", _g1a, "read-committed", ("G1a",), ("read-committed",), "read-uncommitted"),
    ("G1b", lambda: concurrent("ag1 ag2", "rg1"), "read-committed", ("G1b",), ("read-committed",), None),
    (
        "dirty-update",
        lambda: History().txn(0, "ah1", "fail").txn(1, "ah2").txn(2, "rh12"),
        "read-committed",
        ("G1a", "dirty-update"),
        ("read-committed",),
        "read-uncommitted",
    ),
    (
        "incompatible-order",
        lambda: concurrent("ai1", "ai2", "ai3", "ri13", "ri12"),
        "read-committed",
        ("incompatible-order",),
        ("read-committed",),
        None,
    ),
    (
        "duplicate-elements",
        lambda: concurrent("aj1", "rj11"),
        "read-uncommitted",
        ("duplicate-elements",),
        ("read-uncommitted",),
        None,
    ),
    (
        "internal",
        lambda: concurrent("ak1", "ak2 rk1"),
        "serializable",
        ("internal",),
        ("read-atomic",),
        "read-committed",
    ),
    (
        "future-read",
        lambda: concurrent("rl5 al5", "am1", "rm1"),
        "read-committed",
        ("future-read",),
        ("read-committed",),
        "read-uncommitted",
    ),
    (
        "lost-update",
        _lost_update,
        "serializable",
        ("G2-item", "lost-update"),
        ("cursor-stability", "update-atomic"),
        "read-committed",
    ),
]


@pytest.mark.parametrize(("name", "build", "model", "types", "ruled_out", "holds"), CASES, ids=[c[0] for c in CASES])
def test_anomaly_is_found_named_and_rules_out_its_model(
    name: str, build: Build, model: str, types: tuple[str, ...], ruled_out: tuple[str, ...], holds: str | None
) -> None:
    v = build().check(model)
    assert v.valid is False, v.to_dict()
    assert v.anomaly_types == types
    assert name in v.anomalies
    assert v.not_ == ruled_out
    for case in v.anomalies[name]:
        assert case["explanation"], case
    if holds is not None:
        ok = build().check(holds)
        assert ok.valid is True, (holds, ok.to_dict())


def test_g0_cycle_and_its_ww_steps() -> None:
    v = concurrent("ap3 aq3", "ap4 aq4", "rp34 rq43").check("read-uncommitted")
    (case,) = v.anomalies["G0"]
    assert sorted(indices(case)[:-1]) == [3, 4]
    assert [(s["type"], s["key"], s["value"], s["value'"]) for s in case["steps"]] in (
        [("ww", "p", 3, 4), ("ww", "q", 4, 3)],
        [("ww", "q", 4, 3), ("ww", "p", 3, 4)],
    )


def test_g_single_steps_are_rw_then_ww() -> None:
    (case,) = concurrent("am5 an5", "am6 rn", "rm56").check("serializable").anomalies["G-single-item"]
    assert case["rels"] in (["rw", "ww"], ["ww", "rw"])
    rw = next(s for s in case["steps"] if s["type"] == "rw")
    assert (rw["key"], rw["value"], rw["value'"]) == ("n", "init", 5)


def test_g_nonadjacent_rw_edges_are_not_adjacent() -> None:
    (case,) = concurrent("ac4", "rc4 rd", "ad4", "rd4 rc").check("serializable").anomalies["G-nonadjacent-item"]
    rels = case["rels"]
    assert rels.count("rw") == 2 and rels.count("wr") == 2
    assert all(not (rels[i] == "rw" == rels[i - 1]) for i in range(len(rels)))


def test_adjacent_rw_cycles_are_allowed_by_snapshot_isolation() -> None:
    # T1 -rw-> T2 -rw-> T3 -wr-> T4 -rw-> T5 -wr-> T1: two rw edges are adjacent, so this is G2-item,
    # which SI permits (the shape of Elle's negative G-nonadjacent case, made an actual cycle)
    h = concurrent("ra re1", "aa1 rb", "ab1 ac1", "rc1 rd", "ad1 ae1")
    assert h.check("snapshot-isolation").valid is True
    assert h.check("serializable").anomaly_types == ("G2-item",)


def test_g_nonadjacent_is_found_next_to_a_shorter_g2_item() -> None:
    # From T1's rw edge to T2, the shortest way back (T2 -rw-> T3 -wr-> T1) has adjacent rw edges: G2-item.
    # The longer way (T2 -wr-> T4 -rw-> T5 -wr-> T1) has none: the worse G-nonadjacent-item must be reported.
    h = concurrent("ra rf1 re1", "aa1 rb ac1", "ab1 af1", "rc1 rd", "ad1 ae1")
    v = h.check("serializable")
    assert v.anomaly_types == ("G-nonadjacent-item",), v.anomaly_types
    (case,) = v.anomalies["G-nonadjacent-item"]
    assert case["rels"].count("rw") == 2


def test_one_transaction_appending_twice_after_its_read_is_no_lost_update() -> None:
    assert concurrent("rt at1 at2", "rt12").check("strict-serializable").valid is True


def test_unobserved_append_still_follows_the_longest_read() -> None:
    # x shows 1 < 2, y never shows 1 (its append is unobserved so it follows [2]): G0 and G-single-item
    h = History()
    for p, spec in enumerate(("ax1 ay1", "ax2 ay2", "ax3 ay3", "rx12", "ry2")):
        h.invoke(p, spec)
    for p in range(5):
        h.complete(p)
    v = h.check("serializable")
    assert v.anomaly_types == ("G-single-item", "G0")
    assert v.not_ == ("read-uncommitted",)


def test_info_nil_read_is_not_evidence() -> None:
    # the info transaction's read of y is unknown, so no rw edge from it: only its append counts
    h = History().invoke(0, "ax2 ry").invoke(1, "ax1 ay1").complete(1).complete(0, "info").txn(2, "rx12 ry1")
    assert h.check("serializable").valid is True


def test_g1a_case_names_reader_writer_and_element() -> None:
    (case,) = _g1a().check("read-committed").anomalies["G1a"]
    assert case["element"] == 3
    assert case["op"]["type"] == "ok" and case["writer"]["type"] == "fail"
    assert case["mop"] == ["r", "e", [3]]


def test_dirty_update_case_covers_the_aborted_range() -> None:
    h = History().txn(0, "ah1", "fail").txn(1, "ah2", "info").txn(2, "ah3").txn(3, "rh123")
    (case,) = h.check("read-committed").anomalies["dirty-update"]
    assert case["values"] == [1, 2, 3]
    assert [t if isinstance(t, str) else t["type"] for t in case["txns"]] == ["fail", "...", "ok"]


def test_incompatible_order_reports_both_reads_shorter_first() -> None:
    (case,) = concurrent("ai1", "ai2", "ai3", "ri123", "ri13").check("read-committed").anomalies["incompatible-order"]
    assert case["key"] == "i" and case["values"] == [[1, 3], [1, 2, 3]]


def test_internal_expected_state_has_an_unknown_prefix() -> None:
    (case,) = concurrent("ak1", "ak2 rk1").check("serializable").anomalies["internal"]
    assert case["expected"] == ["...", 2] and case["mop"] == ["r", "k", [1]]


def test_internal_read_then_read_disagreement() -> None:
    v = concurrent("av1", "av2", "rv1 rv12").check("serializable")
    (case,) = v.anomalies["internal"]
    assert case["expected"] == [1]


def test_lost_update_names_both_transactions() -> None:
    (case,) = _lost_update().check("serializable").anomalies["lost-update"]
    assert case["key"] == "m" and case["value"] == [1] and len(case["txns"]) == 2


def test_empty_graph_is_unknown_not_valid() -> None:
    v = serial("an1").check("serializable")
    assert v.valid == "unknown"
    assert v.anomaly_types == ("empty-transaction-graph",)
    assert v.not_ == ()


def test_g1a_without_edges_under_read_uncommitted_is_unknown() -> None:
    # Elle: read-uncommitted does not forbid G1a, but the empty graph still makes the verdict unknown,
    # and `not` still names read-committed
    v = History().txn(0, "ae3", "fail").txn(1, "re3").check("read-uncommitted")
    assert (v.valid, v.anomaly_types, v.not_) == ("unknown", ("empty-transaction-graph",), ("read-committed",))
