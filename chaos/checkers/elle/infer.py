"""Version orders and the transaction dependency graph (ww / wr / rw, process, realtime).

List-append makes the version order of each key visible: every read returns the whole list, so the
longest read is the order of appends, and every other read must be a prefix of it (otherwise the
history has an incompatible-order, found while loading). From that order:

- ww  T1 -> T2: T2 appended the element that directly follows T1's element;
- wr  T1 -> T2: T2 read a list whose last element T1 appended;
- rw  T1 -> T2: T1 read the state just before T2's element (T1 did not see T2's append).

An append that no read ever shows still happened after the longest observed state, so it follows the
last observed element (Elle's rule). Only ok and info transactions can have taken effect; failed ones
get no edges. Edges are built as integer arrays and merged with numpy so that a pair related in
several ways is one edge carrying a bit mask, never one Python object per edge.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np

from chaos.checkers.elle.history import FAIL, READ, Observed

WW, WR, RW, PROCESS, REALTIME = 1, 2, 4, 8, 16
REL_NAMES = {WW: "ww", WR: "wr", RW: "rw", PROCESS: "process", REALTIME: "realtime"}
#: When one pair is related several ways, explanations and fallback cycles use the first of these.
REL_PRIORITY = (WW, WR, RW, PROCESS, REALTIME)
INIT = None  # the state before any append


@dataclass(frozen=True)
class Orders:
    """Per key id: the version order, each element's position in it, and the unobserved appends."""

    order: list[list[int]]
    pos: list[dict[int, int]]
    unobserved: list[list[int]]

    def previous(self, kid: int, v: int) -> int | None:
        """The element appended just before `v` (INIT for the first); unobserved ones follow the last."""
        i = self.pos[kid].get(v)
        if i is None:
            order = self.order[kid]
            return order[-1] if order else INIT
        return self.order[kid][i - 1] if i > 0 else INIT


@dataclass(frozen=True)
class Graph:
    """Deduplicated edges sorted by (src, dst); `rel` is the bit mask of every relation between them."""

    n: int
    src: np.ndarray
    dst: np.ndarray
    rel: np.ndarray

    @property
    def edges(self) -> int:
        return len(self.src)

    def has(self, bit: int) -> bool:
        return bool(len(self.rel)) and bool(np.any(self.rel & bit))


def version_orders(o: Observed) -> Orders:
    """Distinct elements of each key's longest read, in order, plus appends no read contains."""
    order: list[list[int]] = []
    pos: list[dict[int, int]] = []
    unobserved: list[list[int]] = []
    for kid in range(len(o.keys)):
        sid = o.main_snap[kid]
        p: dict[int, int] = {}
        if sid >= 0:
            for e in o.snaps[sid]:
                if e not in p:
                    p[e] = len(p)
        order.append(list(p))
        pos.append(p)
        unobserved.append([v for v, t in o.writer[kid].items() if v not in p and o.outcome[t] != FAIL])
    return Orders(order, pos, unobserved)


def _ww_edges(o: Observed, orders: Orders, src: array, dst: array) -> None:
    """Consecutive elements of each version order, and the last observed one -> unobserved appends."""
    outcome = o.outcome
    for kid, order in enumerate(orders.order):
        w = o.writer[kid]
        prev = -1
        for i, v in enumerate(order):
            t = w.get(v, -1)
            if t >= 0 and outcome[t] == FAIL:
                t = -1
            if i and prev >= 0 and t >= 0 and prev != t:
                src.append(prev)
                dst.append(t)
            prev = t
        if prev >= 0:
            for v in orders.unobserved[kid]:
                t = w[v]
                if prev != t:
                    src.append(prev)
                    dst.append(t)


def _read_edges(o: Observed, orders: Orders, wr: tuple[array, array], rw: tuple[array, array]) -> None:
    """wr from the writer of the last element read; rw to the writer(s) of the next state."""
    outcome, kinds, keys, lens, vals = o.outcome, o.m_kind, o.m_key, o.m_len, o.m_val
    wr_src, wr_dst = wr
    rw_src, rw_dst = rw
    for t in range(o.n):
        if outcome[t] == FAIL:
            continue
        first = o.mop_first[t]
        for m in range(first, first + o.mop_count[t]):
            if kinds[m] != READ:
                continue
            kid = keys[m]
            w = o.writer[kid]
            order = orders.order[kid]
            if lens[m]:
                e = vals[m]
                a = w.get(e, -1)
                if a >= 0 and a != t and outcome[a] != FAIL:
                    wr_src.append(a)
                    wr_dst.append(t)
                i = orders.pos[kid].get(e)
                if i is None:
                    continue
                succ = (order[i + 1],) if i + 1 < len(order) else orders.unobserved[kid]
            else:
                succ = (order[0],) if order else orders.unobserved[kid]
            for s in succ:
                b = w.get(s, -1)
                if b >= 0 and b != t and outcome[b] != FAIL:
                    rw_src.append(t)
                    rw_dst.append(b)


def _as_np(a: array) -> np.ndarray:
    return np.frombuffer(a, dtype=np.int64) if len(a) else np.zeros(0, dtype=np.int64)


def merge_edges(n: int, parts: list[tuple[array | np.ndarray, array | np.ndarray, int]]) -> Graph:
    """One edge per (src, dst) pair with the OR of its relation bits; self-edges dropped."""
    srcs = [_as_np(s) if isinstance(s, array) else s for s, _, _ in parts]
    dsts = [_as_np(d) if isinstance(d, array) else d for _, d, _ in parts]
    rels = [np.full(len(s), bit, dtype=np.uint8) for s, (_, _, bit) in zip(srcs, parts, strict=True)]
    src = np.concatenate(srcs) if srcs else np.zeros(0, dtype=np.int64)
    dst = np.concatenate(dsts) if dsts else np.zeros(0, dtype=np.int64)
    rel = np.concatenate(rels) if rels else np.zeros(0, dtype=np.uint8)
    keep = src != dst
    src, dst, rel = src[keep], dst[keep], rel[keep]
    if not len(src):
        return Graph(n, src, dst, rel)
    key = src * np.int64(max(n, 1)) + dst
    order = np.argsort(key, kind="stable")
    key, rel = key[order], rel[order]
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    rel = np.bitwise_or.reduceat(rel, starts)
    key = key[starts]
    return Graph(n, key // max(n, 1), key % max(n, 1), rel)


def build_graph(o: Observed, orders: Orders, *, process: bool, realtime: bool) -> Graph:
    """All dependency edges, plus the process or realtime order when the model needs it."""
    ww = (array("q"), array("q"))
    wr = (array("q"), array("q"))
    rw = (array("q"), array("q"))
    _ww_edges(o, orders, *ww)
    _read_edges(o, orders, wr, rw)
    parts: list[tuple[array | np.ndarray, array | np.ndarray, int]] = [(*ww, WW), (*wr, WR), (*rw, RW)]
    if process:
        parts.append((o.process_src, o.process_dst, PROCESS))
    if realtime:
        parts.append((o.rt_src, o.rt_dst, REALTIME))
    return merge_edges(o.n, parts)
