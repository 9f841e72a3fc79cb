"""`check(history, model=...) -> Verdict`: the list-append analysis from operations to Elle's result map.

Steps: choose the extra orders the model needs (realtime for strict/strong models, process for
strong-session ones, none otherwise, as Elle does), load and validate, infer version orders and
edges, find the non-cycle anomalies, search each strongly connected component within its time
budget, then build Elle's result: anomalies the model forbids make the history invalid, a timeout
or an empty graph alone makes it unknown, and `not`/`also-not` name the models ruled out.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from chaos.checkers.elle import anomalies as non_cycle
from chaos.checkers.elle import cycles, models
from chaos.checkers.elle.explain import EMPTY_GRAPH, Context, render_case
from chaos.checkers.elle.history import (
    FAIL,
    INFO,
    OK,
    Observed,
    iter_jsonl,
    load_labelled,
)
from chaos.checkers.elle.infer import (
    PROCESS,
    REALTIME,
    REL_NAMES,
    build_graph,
    version_orders,
)

DEFAULT_MODEL = "strict-serializable"
DEFAULT_TIME_LIMIT = 1.0  # seconds of cycle search per strongly connected component (Elle: 1000 ms)
Valid = Literal[True, False, "unknown"]
_REALTIME_TYPES = frozenset(t for t in cycles.CYCLE_TYPES if t.endswith("-realtime"))
_PROCESS_TYPES = frozenset(t for t in cycles.CYCLE_TYPES if t.endswith("-process"))


@dataclass(frozen=True)
class Verdict:
    """Elle's result map. `valid` is True, False or "unknown"; anomalies are read-only mappings."""

    valid: Valid
    model: tuple[str, ...]
    anomaly_types: tuple[str, ...] = ()
    not_: tuple[str, ...] = ()
    also_not: tuple[str, ...] = ()
    anomalies: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=lambda: MappingProxyType({}))
    stats: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: valid, anomaly-types, not, also-not, anomalies (+ model, stats)."""
        return {
            "valid": self.valid,
            "anomaly-types": list(self.anomaly_types),
            "not": list(self.not_),
            "also-not": list(self.also_not),
            "anomalies": {k: [dict(c) for c in v] for k, v in self.anomalies.items()},
            "model": list(self.model),
            "stats": dict(self.stats),
        }


def _models(model: str | Sequence[str]) -> tuple[str, ...]:
    ms = [model] if isinstance(model, str) else list(model)
    return tuple(dict.fromkeys(models.canonical(m) for m in ms))


def _orders_needed(reportable: frozenset[str]) -> tuple[bool, bool]:
    """(process, realtime): realtime subsumes process (a process runs one transaction at a time)."""
    realtime = bool(reportable & _REALTIME_TYPES)
    return (not realtime and bool(reportable & _PROCESS_TYPES)), realtime


def analyse(o: Observed, *, process: bool, realtime: bool, time_limit: float) -> tuple[dict[str, list], dict]:
    """Every anomaly found (explained, keyed by type) and statistics, before any model filtering."""
    t0 = time.monotonic()
    orders = version_orders(o)
    graph = build_graph(o, orders, process=process, realtime=realtime)
    t1 = time.monotonic()
    ctx = Context(o, orders)
    found: dict[str, list] = {
        k: [render_case(ctx, k, c) for c in cs] for k, cs in non_cycle.find_all(o, orders).items()
    }
    if not graph.edges and not o.rt_nonempty:
        found["empty-transaction-graph"] = [dict(EMPTY_GRAPH)]
    has = (PROCESS if graph.has(PROCESS) else 0) | (REALTIME if graph.has(REALTIME) else 0)
    comps = cycles.components(graph)
    t2 = time.monotonic()
    largest = 0
    for adj in cycles.component_adjacency(graph, comps):
        largest = max(largest, len(adj))
        res = cycles.check_component(adj, has, time_limit)
        for e in res.exists:
            found.setdefault(e.spec.type, []).append(ctx.exists(e))
        if res.timeout is not None:
            found.setdefault("cycle-search-timeout", []).append(ctx.timeout(res.timeout, time_limit))
        for name, c in res.cycles:
            found.setdefault(name, []).append(ctx.cycle(name, c))
    t3 = time.monotonic()
    rel_counts = {REL_NAMES[b]: int(((graph.rel & b) > 0).sum()) for b in REL_NAMES}
    stats = {
        "transactions": o.n,
        "ok": o.outcome.count(OK),
        "info": o.outcome.count(INFO),
        "fail": o.outcome.count(FAIL),
        "never-completed": o.dangling,
        "marks": len(o.marks),
        "keys": len(o.keys),
        "edges": graph.edges,
        "edges-by-relation": rel_counts,
        "components": len(comps),
        "largest-component": largest,
        "seconds-graph": round(t1 - t0, 3),
        "seconds-scc": round(t2 - t1, 3),
        "seconds-search": round(t3 - t2, 3),
    }
    return found, stats


def _forbidden(ms: tuple[str, ...], anomalies: Iterable[str]) -> frozenset[str]:
    """What makes the history invalid: the models' forbidden anomalies and any anomaly implying a named one."""
    return models.forbidden(ms) | models.anomalies_implying(anomalies)


def result(
    found: Mapping[str, list], ms: tuple[str, ...], stats: Mapping[str, Any], anomalies: Iterable[str] = ()
) -> Verdict:
    """Elle's result map: reportable = forbidden by the models (or named), plus the unknown types."""
    forbidden = _forbidden(ms, anomalies)
    reportable = {k: v for k, v in found.items() if v and (k in forbidden or k in models.UNKNOWN_TYPES)}
    others = [k for k in reportable if k not in cycles.EXISTS_TYPES]
    ruled_out = models.impossible_models(others)
    for spec in cycles.EXISTS_SPECS:  # a cycle-exists is redundant once a found anomaly rules its model out
        if spec.model in ruled_out:
            reportable.pop(spec.type, None)
    if not reportable:
        return Verdict(True, ms, stats=MappingProxyType(dict(stats)))
    low, high = models.boundary(k for k, v in found.items() if v)
    valid: Valid = False if any(k in forbidden for k in reportable) else "unknown"
    frozen = MappingProxyType({k: tuple(MappingProxyType(c) for c in reportable[k]) for k in sorted(reportable)})
    return Verdict(valid, ms, tuple(sorted(reportable)), low, high, frozen, MappingProxyType(dict(stats)))


def check(
    ops: Iterable[Any],
    model: str | Sequence[str] = DEFAULT_MODEL,
    *,
    time_limit: float = DEFAULT_TIME_LIMIT,
    anomalies: Sequence[str] = (),
) -> Verdict:
    """Check a list-append history (operations in Elle's shape, in index order) against `model`.

    `model` is one model name or several (all must hold; () for none). `anomalies` names extra anomalies
    to forbid, as Elle's `:anomalies` option does (G1 means G1a, G1b, G1c and whatever implies them).
    Raises `HistoryError` on bad input and ValueError on an unknown model; never returns "valid" for a
    component whose search ran out of time.
    """
    return check_labelled(
        ((op, f"op #{i}") for i, op in enumerate(ops)), model, time_limit=time_limit, anomalies=anomalies
    )


def check_labelled(
    pairs: Iterable[tuple[Any, str]],
    model: str | Sequence[str] = DEFAULT_MODEL,
    *,
    time_limit: float = DEFAULT_TIME_LIMIT,
    anomalies: Sequence[str] = (),
) -> Verdict:
    """`check` over (operation, where) pairs; `where` names the operation in error messages."""
    t0 = time.monotonic()
    ms = _models(model)
    process, realtime = _orders_needed(_forbidden(ms, anomalies) | models.UNKNOWN_TYPES)
    o = load_labelled(pairs, want_process=process, want_realtime=realtime)
    t1 = time.monotonic()
    found, stats = analyse(o, process=process, realtime=realtime, time_limit=time_limit)
    stats = {**stats, "seconds-load": round(t1 - t0, 3), "seconds": round(time.monotonic() - t0, 3)}
    return result(found, ms, stats, anomalies)


def check_file(
    path: str | Path, model: str | Sequence[str] = DEFAULT_MODEL, *, time_limit: float = DEFAULT_TIME_LIMIT
) -> Verdict:
    """`check` over a JSONL history file; errors name the line."""
    return check_labelled(iter_jsonl(path), model, time_limit=time_limit)
