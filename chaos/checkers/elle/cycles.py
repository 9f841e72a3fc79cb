"""Strongly connected components, bounded cycle search, and the Adya/Elle name of each cycle.

A cycle can only live inside one strongly connected component, so the whole graph goes once through
rustworkx's SCC and every later step works on one component's local adjacency. Per component:

1. *Cycle existence* (cheap, exact): for each model, is there a cycle in the subgraph of the edges
   that model forbids cycles in? Snapshot isolation uses the sequential extension A ∪ (A;rw) of
   A = ww ∪ wr, whose cycles are exactly the walks with no two adjacent rw edges. A model whose
   subgraph is acyclic cannot be violated by a cycle here, so searches for its anomalies are skipped.
2. *Search*, most severe anomaly first, skipping every anomaly already implied by one found: a
   breadth-first search over (transaction, path state), the state counting rw edges (0, 1, 2+),
   whether the last edge was rw, and which required relations were taken. Each search starts on an
   edge of the kind the anomaly needs (an rw edge, a process/realtime edge, a wr edge), so a cycle is
   found from its rarest edge. A walk that revisits a transaction is split into simple cycles and
   kept only if one still matches.
3. The search of a component has a time budget. When it runs out the component yields a
   `cycle-search-timeout` (verdict "unknown" unless something else is already forbidden), any
   cycle found by a plain depth-first walk, and the existence results, never "valid".
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import rustworkx as rx

from chaos.checkers.elle import models
from chaos.checkers.elle.infer import PROCESS, REALTIME, REL_PRIORITY, RW, WR, WW, Graph

Adjacency = dict[int, list[tuple[int, int]]]  # node -> [(successor, relation bits)]
NONE, SINGLE, NONADJACENT, MULTIPLE = "none", "single", "nonadjacent", "multiple"
_CHUNK = 200_000


@dataclass(frozen=True)
class Cycle:
    """A simple cycle: nodes[0] == nodes[-1]; rels[i] is the relation used from nodes[i] to nodes[i+1]."""

    nodes: tuple[int, ...]
    rels: tuple[int, ...]


@dataclass(frozen=True)
class Spec:
    """What a cycle of one anomaly type may use: ordinary relations, the rw rule, required relations."""

    name: str
    allowed: int
    rw: str
    required: int = 0


def _variants(base: list[Spec]) -> list[Spec]:
    out = list(base)
    for bit, suffix in ((PROCESS, "-process"), (REALTIME, "-realtime")):
        out += [Spec(s.name + suffix, s.allowed | bit, s.rw, s.required | bit) for s in base]
    return out


#: In an order where an anomaly always comes after every anomaly that implies it.
SPECS: tuple[Spec, ...] = tuple(
    _variants(
        [
            Spec("G0", WW, NONE),
            Spec("G1c", WW | WR, NONE, WR),
            Spec("G-single-item", WW | WR, SINGLE),
            Spec("G-nonadjacent-item", WW | WR, NONADJACENT),
            Spec("G2-item", WW | WR, MULTIPLE),
        ]
    )
)
CYCLE_TYPES: frozenset[str] = frozenset(s.name for s in SPECS)


@dataclass(frozen=True)
class ExistsSpec:
    """A model whose forbidden cycles live in `mask` (or in the extension of `mask` by rw)."""

    canonical: str
    model: str
    mask: int
    extension: bool = False

    @property
    def type(self) -> str:
        return f"{self.canonical}-cycle-exists"

    def subgraph(self) -> list[object]:
        names: list[object] = [
            "union",
            *(n for b, n in zip(REL_PRIORITY, ("ww", "wr", "rw", "process", "realtime"), strict=True) if self.mask & b),
        ]
        return ["extension", names, ["union", "rw"]] if self.extension else names


EXISTS_SPECS: tuple[ExistsSpec, ...] = (
    ExistsSpec("PL-1", "read-uncommitted", WW),
    ExistsSpec("PL-2", "read-committed", WW | WR),
    ExistsSpec("PL-SI", "snapshot-isolation", WW | WR, True),
    ExistsSpec("PL-2.99", "repeatable-read", WW | WR | RW),
    ExistsSpec("PL-3", "serializable", WW | WR | RW),
    ExistsSpec("strong-session-PL-1", "strong-session-read-uncommitted", WW | PROCESS),
    ExistsSpec("strong-session-PL-2", "strong-session-read-committed", WW | WR | PROCESS),
    ExistsSpec("strong-session-snapshot-isolation", "strong-session-snapshot-isolation", WW | WR | PROCESS, True),
    ExistsSpec("strong-session-serializable", "strong-session-serializable", WW | WR | RW | PROCESS),
    ExistsSpec("strong-PL-1", "strong-read-uncommitted", WW | REALTIME),
    ExistsSpec("strong-PL-2", "strong-read-committed", WW | WR | REALTIME),
    ExistsSpec("strong-snapshot-isolation", "strong-snapshot-isolation", WW | WR | REALTIME, True),
    ExistsSpec("PL-SS", "strict-serializable", WW | WR | RW | REALTIME),
)
EXISTS_TYPES: frozenset[str] = frozenset(s.type for s in EXISTS_SPECS)


@dataclass(frozen=True)
class Exists:
    spec: ExistsSpec
    scc: tuple[int, ...]  # the smallest cyclic component of that subgraph (txn ids)


@dataclass(frozen=True)
class Timeout:
    spec_type: str
    does_not_contain: tuple[str, ...]
    scc_size: int


@dataclass
class ComponentResult:
    size: int
    cycles: list[tuple[str, Cycle]] = field(default_factory=list)
    exists: list[Exists] = field(default_factory=list)
    timeout: Timeout | None = None


class _OutOfTime(Exception):
    pass


# ----------------------------------------------------------------------------- components


def _prune(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """Edges whose both ends have in- and out-edges: a cheap cut before the SCC, a few passes."""
    alive = np.ones(len(src), dtype=bool)
    for _ in range(4):
        s, d = src[alive], dst[alive]
        keep = (np.bincount(s, minlength=n) > 0) & (np.bincount(d, minlength=n) > 0)
        new = alive & keep[src] & keep[dst]
        if new.sum() == alive.sum():
            break
        alive = new
    return alive


def components(g: Graph) -> list[np.ndarray]:
    """Strongly connected components of more than one transaction (sorted txn ids)."""
    if not g.edges:
        return []
    alive = _prune(g.src, g.dst, g.n)
    s, d = g.src[alive], g.dst[alive]
    if not len(s):
        return []
    nodes, inv = np.unique(np.concatenate((s, d)), return_inverse=True)
    del s, d, alive
    rg = rx.PyDiGraph()
    rg.add_nodes_from([None] * len(nodes))
    m = len(inv) // 2
    for i in range(0, m, _CHUNK):  # a few hundred thousand edge tuples at a time, not millions at once
        j = min(i + _CHUNK, m)
        rg.add_edges_from_no_data(list(zip(inv[i:j].tolist(), inv[m + i : m + j].tolist(), strict=True)))
    del inv
    comps = [np.sort(nodes[np.asarray(c, dtype=np.int64)]) for c in rx.strongly_connected_components(rg) if len(c) > 1]
    comps.sort(key=lambda c: int(c[0]))
    return comps


def component_adjacency(g: Graph, comps: list[np.ndarray]) -> Iterator[Adjacency]:
    """Each component's edges as a local adjacency, in the order of `comps`."""
    cid = np.full(g.n, -1, dtype=np.int64)
    for i, c in enumerate(comps):
        cid[c] = i
    cs = cid[g.src]
    idx = np.flatnonzero((cs >= 0) & (cs == cid[g.dst]))
    idx = idx[np.argsort(cs[idx], kind="stable")]
    counts = np.bincount(cs[idx], minlength=len(comps))
    src, dst, rel = g.src[idx].tolist(), g.dst[idx].tolist(), g.rel[idx].tolist()
    at = 0
    for i, c in enumerate(comps):
        adj: Adjacency = {int(u): [] for u in c}
        for j in range(at, at + int(counts[i])):
            adj[src[j]].append((dst[j], rel[j]))
        at += int(counts[i])
        yield adj


def sccs(adj: dict[int, list[int]]) -> list[list[int]]:
    """Tarjan's strongly connected components, iterative (components can be large)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[list[int]] = []
    for root, succ in adj.items():
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(succ))]
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(adj.get(w, ()))))
                    break
                if w in on_stack and index[w] < low[v]:
                    low[v] = index[w]
            else:
                work.pop()
                if work and low[v] < low[work[-1][0]]:
                    low[work[-1][0]] = low[v]
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    out.append(comp)
    return out


def _masked(adj: Adjacency, mask: int) -> dict[int, list[int]]:
    return {u: [v for v, r in es if r & mask] for u, es in adj.items()}


def _extension(adj: Adjacency, mask: int) -> dict[int, list[int]]:
    """A ∪ (A;rw) for A = edges in `mask`: a step of A optionally followed by one rw step."""
    a = _masked(adj, mask)
    b = _masked(adj, RW)
    out: dict[int, list[int]] = {}
    for x, ys in a.items():
        zs = dict.fromkeys(ys)
        for y in ys:
            zs.update(dict.fromkeys(b[y]))
        out[x] = list(zs)
    return out


def _cyclic(sub: dict[int, list[int]]) -> list[list[int]]:
    """Components with a cycle: more than one node, or a node with a self-edge."""
    return [c for c in sccs(sub) if len(c) > 1 or c[0] in sub[c[0]]]


# ----------------------------------------------------------------------------- classification


def classify(rels: tuple[int, ...] | list[int]) -> str:
    """Elle's name for a cycle from the relation used on each of its edges."""
    n_rw = sum(1 for r in rels if r == RW)
    if n_rw == 1:
        base = "G-single-item"
    elif n_rw > 1:
        adjacent = any(rels[i] == RW and rels[i - 1] == RW for i in range(len(rels)))
        base = "G2-item" if adjacent else "G-nonadjacent-item"
    elif WR in rels:
        base = "G1c"
    elif WW in rels:
        base = "G0"
    else:
        raise ValueError(f"a cycle of only process/realtime edges cannot exist: {rels}")
    if REALTIME in rels:
        return base + "-realtime"
    return base + "-process" if PROCESS in rels else base


def _valid(nodes: tuple[int, ...], rels: tuple[int, ...], spec: Spec) -> bool:
    """Does a closed walk satisfy `spec` (relations, rw count and adjacency, required relations)?"""
    if len(set(nodes[:-1])) != len(nodes) - 1:
        return False
    seen = 0
    for r in rels:
        if (r == RW and spec.rw == NONE) or (r != RW and not r & spec.allowed):
            return False
        seen |= r
    n_rw = sum(1 for r in rels if r == RW)
    adjacent = any(rels[i] == RW and rels[i - 1] == RW for i in range(len(rels)))
    ok_rw = {NONE: n_rw == 0, SINGLE: n_rw == 1, NONADJACENT: n_rw >= 2 and not adjacent, MULTIPLE: n_rw >= 2}[spec.rw]
    return ok_rw and seen & spec.required == spec.required


def _simple(nodes: tuple[int, ...], rels: tuple[int, ...], spec: Spec) -> Cycle | None:
    """A simple cycle inside a closed walk that still satisfies `spec`, if there is one."""
    first: dict[int, int] = {}
    for i, x in enumerate(nodes[:-1]):
        if x in first:
            j = first[x]
            inner = _simple(nodes[j : i + 1], rels[j:i], spec)
            return inner or _simple(nodes[: j + 1] + nodes[i + 1 :], rels[:j] + rels[i:], spec)
        first[x] = i
    return Cycle(nodes, rels) if _valid(nodes, rels, spec) else None


# ----------------------------------------------------------------------------- search


class _Clock:
    """Checks the deadline every few hundred steps (time.monotonic is not free)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks & 255 == 0 and time.monotonic() > self.deadline:
            raise _OutOfTime


def _first_rel(spec: Spec) -> int:
    """The kind of edge every cycle of this type has, which the search starts from."""
    if spec.rw != NONE:
        return RW
    for bit in (PROCESS, REALTIME, WR):
        if spec.required & bit:
            return bit
    return WW


def _accepts(spec: Spec, n_rw: int, last_rw: int, first_rw: bool, seen: int) -> bool:
    if seen != spec.required:
        return False
    if spec.rw == NONE:
        return n_rw == 0
    if spec.rw == SINGLE:
        return n_rw == 1
    if spec.rw == NONADJACENT:
        return n_rw >= 2 and not (last_rw and first_rw)
    return n_rw >= 2


def _bfs(adj: Adjacency, spec: Spec, a: int, b: int, r0: int, clock: _Clock) -> Cycle | None:
    """Shortest walk b -> a closing the edge a -r0-> b into a cycle of type `spec`."""
    req = spec.required
    first_rw = r0 == RW
    st0 = (1 if first_rw else 0) | (4 if first_rw else 0) | ((r0 & req) << 3)
    parent: dict[tuple[int, int], tuple[tuple[int, int], int] | None] = {(b, st0): None}
    frontier = deque([(b, st0)])
    while frontier:
        u, st = frontier.popleft()
        clock.tick()
        n_rw, last, seen = st & 3, (st >> 2) & 1, st >> 3
        for v, mask in adj[u]:
            for r in REL_PRIORITY:
                if not mask & r:
                    continue
                if r == RW:
                    if spec.rw == NONE or (spec.rw == SINGLE and n_rw) or (spec.rw == NONADJACENT and last):
                        continue
                    nst = min(n_rw + 1, 2) | 4
                elif r & spec.allowed:
                    nst = n_rw
                else:
                    continue
                nseen = seen | (r & req)
                if v == a:
                    if _accepts(spec, nst & 3, nst >> 2, first_rw, nseen):
                        found = _walk(parent, (u, st), a, r, r0, spec)
                        if found is not None:
                            return found  # else the walk was not simple: keep looking
                    continue
                key = (v, nst | (nseen << 3))
                if key not in parent:
                    parent[key] = ((u, st), r)
                    frontier.append(key)
    return None


def _walk(parent: dict, last: tuple[int, int], a: int, r_last: int, r0: int, spec: Spec) -> Cycle | None:
    nodes = [a]
    rels = [r_last]
    at: tuple[int, int] | None = last
    while at is not None:
        nodes.append(at[0])
        step = parent[at]
        if step is None:
            break
        at, r = step
        rels.append(r)
    nodes.append(a)
    rels.append(r0)
    nodes.reverse()
    rels.reverse()
    return _simple(tuple(nodes), tuple(rels), spec)


def _same_component(adj: Adjacency, mask: int) -> dict[int, int]:
    comp: dict[int, int] = {}
    for i, c in enumerate(sccs(_masked(adj, mask))):
        for x in c:
            comp[x] = i
    return comp


def search(adj: Adjacency, spec: Spec, clock: _Clock) -> Cycle | None:
    """One cycle of type `spec` in a component, or None; raises _OutOfTime past the deadline."""
    r0 = _first_rel(spec)
    usable = spec.allowed | (RW if spec.rw != NONE else 0)
    comp = _same_component(adj, usable)  # a cycle lies inside one component of what it may use
    for a, es in adj.items():
        ca = comp.get(a)
        for b, mask in es:
            if mask & r0 and comp.get(b) == ca:
                found = _bfs(adj, spec, a, b, r0, clock)
                if found is not None:
                    return found
    return None


def any_cycle(adj: Adjacency) -> Cycle:
    """Some cycle of a strongly connected component, by walking forward until a node repeats."""
    start = next(iter(adj))
    path, at = [start], {start: 0}
    while True:
        u = path[-1]
        for v, _ in adj[u]:
            if v in at:
                nodes = [*path[at[v] :], v]
                return Cycle(tuple(nodes), tuple(_edge_rel(adj, x, y) for x, y in pairwise(nodes)))
        nxt = adj[u][0][0]  # in a strongly connected component every node has a successor
        at[nxt] = len(path)
        path.append(nxt)


def _edge_rel(adj: Adjacency, u: int, v: int) -> int:
    mask = next(r for w, r in adj[u] if w == v)
    return next(b for b in REL_PRIORITY if mask & b)


# ----------------------------------------------------------------------------- per component


def cycle_exists(adj: Adjacency, has: int) -> list[Exists]:
    """Which models' forbidden subgraphs have a cycle here (Elle's `*-cycle-exists`)."""
    out: list[Exists] = []
    redundant: set[str] = set()
    for spec in EXISTS_SPECS:
        extra = spec.mask & (PROCESS | REALTIME)
        if spec.model in redundant or (extra and not has & extra):
            continue  # a stronger model of one already ruled out, or identical to a weaker subgraph
        sub = _extension(adj, spec.mask) if spec.extension else _masked(adj, spec.mask)
        cyclic = _cyclic(sub)
        if cyclic:
            smallest = min(cyclic, key=len)
            out.append(Exists(spec, tuple(sorted(smallest))))
            redundant |= models.models_implying([spec.model])
    return out


def _impossible(exists: list[Exists]) -> frozenset[str]:
    """Cycle anomalies ruled out because the subgraph of some still-possible model is acyclic."""
    ruled_out = models.models_implying([e.spec.model for e in exists])
    possible = {s.model for s in EXISTS_SPECS} - ruled_out
    return CYCLE_TYPES & models.forbidden(possible)


def check_component(adj: Adjacency, has: int, time_limit: float) -> ComponentResult:
    """Existence, then search in severity order within `time_limit` seconds."""
    res = ComponentResult(size=len(adj))
    res.exists = cycle_exists(adj, has)
    skip = set(_impossible(res.exists))
    clock = _Clock(time.monotonic() + time_limit)
    searched: list[str] = []
    for spec in SPECS:
        extra = spec.required & (PROCESS | REALTIME)
        if spec.name in skip or (extra and not has & extra):
            continue
        searched.append(spec.name)
        try:
            found = search(adj, spec, clock)
        except _OutOfTime:
            done = {name for name, _ in res.cycles}
            res.timeout = Timeout(spec.name, tuple(s for s in searched[:-1] if s not in done), len(adj))
            fallback = any_cycle(adj)
            res.cycles.append((classify(fallback.rels), fallback))
            return res
        if found is not None:
            name = classify(found.rels)
            res.cycles.append((name, found))
            skip |= models.implied_anomalies([name, spec.name])
    return res
