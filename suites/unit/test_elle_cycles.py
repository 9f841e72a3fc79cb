"""Graph machinery: realtime/process orders stay small, SCCs, cycle names, the walk-splitting that keeps
cycles simple, and the time budget (running out gives "unknown" or an honest fallback, never "valid")."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from chaos.checkers.elle import check, cycles
from chaos.checkers.elle.history import load
from chaos.checkers.elle.infer import (
    PROCESS,
    REALTIME,
    RW,
    WR,
    WW,
    Graph,
    build_graph,
    version_orders,
)
from suites.unit.elle_dsl import History, concurrent, mops, serial

pytestmark = pytest.mark.unit


def test_realtime_order_of_a_serial_history_is_a_chain_not_all_pairs() -> None:
    o = load(serial(*[f"ax{i % 10}" if i < 10 else "ry" for i in range(40)]).ops)
    assert len(o.rt_src) == 39  # n - 1 edges, not n(n-1)/2
    assert list(zip(o.rt_src, o.rt_dst, strict=True))[:3] == [(0, 1), (1, 2), (2, 3)]


def test_realtime_order_links_only_the_latest_completions() -> None:
    # A and B overlap; C starts after both: C gets two edges. D starts after C: one edge, from C only.
    h = History().invoke(0, "ax1").invoke(1, "ay1").complete(0).complete(1).txn(2, "rx1").txn(3, "ry1")
    o = load(h.ops)
    assert sorted(zip(o.rt_src, o.rt_dst, strict=True)) == [(0, 2), (1, 2), (2, 3)]


def test_concurrent_transactions_have_no_realtime_order() -> None:
    assert len(load(concurrent("ax1", "ax2", "rx12").ops).rt_src) == 0


def test_process_order_links_consecutive_ok_transactions_only() -> None:
    h = History().txn(0, "ax1").txn(0, "ax2", "fail").txn(0, "ax3").txn(1, "rx13").txn(0, "ax4")
    o = load(h.ops)
    assert list(zip(o.process_src, o.process_dst, strict=True)) == [(0, 2), (2, 4)]


def _graph(edges: list[tuple[int, int, int]], n: int) -> Graph:
    src, dst, rel = zip(*edges, strict=True)
    return Graph(n, np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64), np.array(rel, dtype=np.uint8))


def test_components_are_the_nontrivial_sccs() -> None:
    # 2 lies between the two cycles (in and out edges, so it survives the degree pruning) but is in none
    g = _graph([(0, 1, WW), (1, 0, WR), (1, 2, WW), (2, 3, WR), (3, 4, RW), (4, 5, WW), (5, 3, WR), (6, 7, WW)], 8)
    assert [c.tolist() for c in cycles.components(g)] == [[0, 1], [3, 4, 5]]


@pytest.mark.parametrize(
    ("rels", "name"),
    [
        ((WW, WW), "G0"),
        ((WW, WR), "G1c"),
        ((RW, WW), "G-single-item"),
        ((RW, WR, RW, WR), "G-nonadjacent-item"),
        ((RW, RW), "G2-item"),
        ((RW, WR, RW), "G2-item"),
        ((WW, PROCESS), "G0-process"),
        ((RW, REALTIME), "G-single-item-realtime"),
        ((WR, PROCESS, REALTIME), "G1c-realtime"),
    ],
)
def test_classify(rels: tuple[int, ...], name: str) -> None:
    assert cycles.classify(rels) == name


def test_a_walk_revisiting_a_node_is_split_into_a_simple_cycle() -> None:
    spec = next(s for s in cycles.SPECS if s.name == "G-single-item")
    # a -rw-> b -ww-> a -wr-> c -ww-> a : the walk passes a twice; the first loop alone is G-single
    walk = cycles._simple((0, 1, 0, 2, 0), (RW, WW, WR, WW), spec)
    assert walk == cycles.Cycle((0, 1, 0), (RW, WW))
    # the same walk cannot satisfy "exactly one rw and nothing else" if the rw loop is missing
    assert cycles._simple((0, 2, 0, 3, 0), (WR, WW, WR, WW), spec) is None


def test_search_goes_on_past_a_walk_that_is_not_simple() -> None:
    # G-single-item-realtime from the rw edge 0 -> 1. The first walk back that has a realtime edge,
    # 1 -wr-> 2 -ww-> 3 -rt-> 2 -wr-> 0, passes 2 twice and no simple part of it qualifies; the simple
    # 1 -wr-> 4 -rt-> 5 -ww-> 6 -ww-> 0 is as long, and must still be found.
    adj: cycles.Adjacency = {
        0: [(1, RW)],
        1: [(2, WR), (4, WR)],
        2: [(3, WW), (0, WR)],
        3: [(2, REALTIME)],
        4: [(5, REALTIME)],
        5: [(6, WW)],
        6: [(0, WW)],
    }
    spec = next(s for s in cycles.SPECS if s.name == "G-single-item-realtime")
    found = cycles.search(adj, spec, cycles._Clock(float("inf")))
    assert found == cycles.Cycle((0, 1, 4, 5, 6, 0), (RW, WR, REALTIME, WW, WW))


def test_snapshot_isolation_existence_sees_a_two_transaction_g_single() -> None:
    # x -wr-> y -rw-> x: the extension ww|wr ; rw has a self-loop on x. Serializable implies SI, so its
    # subgraph is not searched again; repeatable read does not, so it is.
    adj: cycles.Adjacency = {0: [(1, WR)], 1: [(0, RW)]}
    found = [(e.spec.type, e.scc) for e in cycles.cycle_exists(adj, 0)]
    assert found == [("PL-SI-cycle-exists", (0,)), ("PL-2.99-cycle-exists", (0, 1))]


def _ring(n: int) -> list[dict[str, Any]]:
    """A ww chain of n appends to "ring", closed by two adjacent rw edges (the last link misses "a",
    whose appender misses "b" of the first link): the only cycle is a G2-item of n+1 transactions."""
    txns: list[list[list[Any]]] = []
    for i in range(n):
        txns.append(
            [["append", "ring", i]]
            + ([["append", "b", 1]] if i == 0 else [])
            + ([["r", "a", []]] if i == n - 1 else [])
        )
    txns.append([["append", "a", 1], ["r", "b", []]])
    txns.append([["r", "ring", list(range(n))]])
    ops = [
        {
            "index": p,
            "time": p,
            "process": p,
            "type": "invoke",
            "f": "txn",
            "value": [[f, k, None] if f == "r" else [f, k, v] for f, k, v in t],
        }
        for p, t in enumerate(txns)
    ]
    ops += [
        {"index": len(txns) + p, "time": len(txns) + p, "process": p, "type": "ok", "f": "txn", "value": t}
        for p, t in enumerate(txns)
    ]
    return ops


def test_running_out_of_time_is_unknown_never_valid() -> None:
    h = _ring(600)
    full = check(h, "serializable", time_limit=30)
    assert full.anomaly_types == ("G2-item",) and len(full.anomalies["G2-item"][0]["cycle"]) == 602
    rushed = check(h, "read-committed", time_limit=1e-9)
    assert rushed.valid == "unknown" and rushed.anomaly_types == ("cycle-search-timeout",)
    (t,) = rushed.anomalies["cycle-search-timeout"]
    assert t["anomaly-spec-type"] == "G2-item" and t["scc-size"] == 601
    assert check(h, "read-committed", time_limit=30).valid is True


def test_running_out_of_time_still_reports_a_fallback_cycle() -> None:
    rushed = check(_ring(600), "serializable", time_limit=1e-9)
    assert rushed.valid is False
    assert rushed.anomaly_types == ("G2-item", "cycle-search-timeout")


def test_graph_edges_are_merged_per_pair() -> None:
    # T1 both overwrites and is not seen by T2 on x: ww and rw from the same pair stay one edge
    o = load(concurrent("rx1 ax2", "ax1").ops)
    g = build_graph(o, version_orders(o), process=False, realtime=False)
    assert g.edges == len(set(zip(g.src.tolist(), g.dst.tolist(), strict=True)))


def test_mops_dsl() -> None:
    assert mops("ax1 ry12 rz") == [["append", "x", 1], ["r", "y", [1, 2]], ["r", "z", []]]
