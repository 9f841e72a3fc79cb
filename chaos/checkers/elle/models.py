"""Consistency models, the anomalies each one forbids, and which anomalies imply which.

The three relations below are data, transcribed in our own words from the lattice Elle documents in
`elle.consistency_model` (Kingsbury & Alvaro, VLDB 2020, and the papers it cites: Adya, Cerone et al.,
Daudjee & Salem, Bailis et al.). They are kept as plain dicts so the tests can read them and so that a
verdict can name the weakest models a history rules out (`not`) and the stronger ones it also rules
out (`also-not`), exactly as Elle's output does.

Model names are Elle's friendly names; `strict-serializable` is Adya's PL-SS (Elle also calls it
`strong-serializable`, accepted here as an alias).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

#: model -> the models it implies directly (a history satisfying the key also satisfies each value).
IMPLIES: Mapping[str, tuple[str, ...]] = {
    "causal-cerone": ("read-atomic",),
    "consistent-view": ("cursor-stability", "monotonic-view"),
    "cursor-stability": ("read-committed",),
    "forward-consistent-view": ("consistent-view",),
    "monotonic-atomic-view": ("read-committed",),
    "monotonic-snapshot-read": ("read-committed",),
    "monotonic-view": ("read-committed",),
    "parallel-snapshot-isolation": ("causal-cerone", "update-atomic"),
    "prefix": ("causal-cerone",),
    "read-atomic": ("monotonic-atomic-view",),
    "read-committed": ("read-uncommitted",),
    "read-uncommitted": (),
    "repeatable-read": ("cursor-stability", "monotonic-atomic-view"),
    "serializable": ("repeatable-read", "snapshot-isolation", "update-serializable", "view-serializable"),
    "snapshot-isolation": (
        "forward-consistent-view",
        "monotonic-atomic-view",
        "monotonic-snapshot-read",
        "parallel-snapshot-isolation",
        "prefix",
    ),
    "strict-serializable": (
        "serializable",
        "snapshot-isolation",
        "strong-snapshot-isolation",
        "strong-session-serializable",
        "linearizable",
        "session-serializable",
    ),
    "strong-read-committed": ("strong-session-read-committed", "strong-read-uncommitted"),
    "strong-read-uncommitted": ("strong-session-read-uncommitted",),
    "strong-session-read-committed": ("read-committed", "strong-session-read-uncommitted"),
    "strong-session-read-uncommitted": ("read-uncommitted",),
    "strong-session-serializable": ("serializable", "strong-session-snapshot-isolation"),
    "strong-session-snapshot-isolation": ("snapshot-isolation", "strong-session-read-committed"),
    "strong-snapshot-isolation": ("strong-session-snapshot-isolation", "strong-read-committed"),
    "update-atomic": ("read-atomic",),
    "update-serializable": ("forward-consistent-view",),
    # Below: models no list-append anomaly can rule out directly; present so the lattice is whole.
    "linearizable": (),
    "session-serializable": (),
    "view-serializable": (),
}

#: model -> anomalies it forbids in addition to what the models it implies forbid.
FORBIDS: Mapping[str, tuple[str, ...]] = {
    "causal-cerone": ("internal", "G1a"),
    "consistent-view": ("G1", "G-single"),
    "cursor-stability": ("G1", "G-cursor", "lost-update"),
    "forward-consistent-view": ("G1", "G-SIb"),
    "monotonic-snapshot-read": ("G1", "G-MSR"),
    "monotonic-view": ("G1", "G-monotonic"),
    "parallel-snapshot-isolation": ("internal", "G1a"),
    "prefix": ("internal", "G1a"),
    "read-atomic": ("internal", "G1a", "future-read"),
    "read-committed": ("G1", "PL-2-cycle-exists"),
    "read-uncommitted": ("G0", "duplicate-elements", "cyclic-versions", "PL-1-cycle-exists"),
    "repeatable-read": ("G1", "G2-item", "lost-update", "PL-2.99-cycle-exists"),
    "serializable": ("internal", "G1", "G2", "predicate-read-miss", "PL-3-cycle-exists"),
    # Generalized SI forbids every cycle whose anti-dependency edges are all non-adjacent (Cerone &
    # Gotsman), hence G-nonadjacent rather than only Adya's G-single.
    "snapshot-isolation": ("internal", "G1", "G-SI", "G-nonadjacent", "PL-SI-cycle-exists"),
    "strict-serializable": ("G1", "G1c-realtime", "G2-realtime", "PL-SS-cycle-exists"),
    "strong-read-committed": ("G1c-realtime", "strong-PL-2-cycle-exists"),
    "strong-read-uncommitted": ("G0-realtime", "strong-PL-1-cycle-exists"),
    "strong-session-read-committed": ("G1c-process", "strong-session-PL-2-cycle-exists"),
    "strong-session-read-uncommitted": ("G0-process", "strong-session-PL-1-cycle-exists"),
    "strong-session-serializable": ("G1-process", "G2-process", "strong-session-serializable-cycle-exists"),
    "strong-session-snapshot-isolation": (
        "internal",
        "G1-process",
        "G-nonadjacent-process",
        "strong-session-snapshot-isolation-cycle-exists",
    ),
    "strong-snapshot-isolation": (
        "internal",
        "G1-realtime",
        "G-nonadjacent-realtime",
        "strong-snapshot-isolation-cycle-exists",
    ),
    "update-atomic": ("lost-update",),
    "update-serializable": ("G1", "G-update"),
}

#: anomaly -> anomalies it implies (finding the key means each value is present too).
IMPLIED: Mapping[str, tuple[str, ...]] = {
    "G0": ("G1c", "G0-process"),
    "G0-process": ("G1c-process", "G0-realtime"),
    "G0-realtime": ("G1c-realtime",),
    "G1a": ("G1",),
    "G1b": ("G1",),
    "G1c": ("G1", "G1c-process"),
    "G1c-process": ("G1c-realtime", "G1-process"),
    "G1c-realtime": ("G1-realtime",),
    "G1": ("G1-process",),
    "G1-process": ("G1-realtime",),
    "G-single-item": ("G-single", "G-single-item-process", "G-nonadjacent-item"),
    "G-single-item-process": ("G-single-process", "G-single-item-realtime", "G-nonadjacent-item-process"),
    "G-single-item-realtime": ("G-single-realtime", "G-nonadjacent-item-realtime"),
    "G-single": ("G-nonadjacent", "GSIb", "G-single-process"),
    "G-single-process": ("G-nonadjacent-process", "G-single-realtime"),
    "G-single-realtime": ("G-nonadjacent-realtime",),
    "G-nonadjacent-item": ("G-nonadjacent", "G2-item", "G-nonadjacent-item-process"),
    "G-nonadjacent-item-process": ("G-nonadjacent-process", "G2-item-process", "G-nonadjacent-item-realtime"),
    "G-nonadjacent-item-realtime": ("G2-item-realtime", "G-nonadjacent-realtime"),
    "G-nonadjacent": ("G2", "G-nonadjacent-process"),
    "G-nonadjacent-process": ("G2-process", "G-nonadjacent-realtime"),
    "G-nonadjacent-realtime": ("G2-realtime",),
    "G2": ("G2-process",),
    "G2-item": ("G2", "G2-item-process"),
    "G2-item-process": ("G2-process", "G2-item-realtime"),
    "G2-item-realtime": ("G2-realtime",),
    "G2-process": ("G2-realtime",),
    "GSIa": ("GSI",),
    "GSIb": ("GSI",),
    # Two committed reads that cannot come from one timeline of appends: some read saw a state that
    # was never committed, i.e. a dirty read.
    "incompatible-order": ("G1a",),
    # Reading your own later append is a one-transaction cycle of information flow.
    "future-read": ("G1c",),
    # Committed state built on an aborted write: counted with the aborted reads.
    "dirty-update": ("G1a",),
    # Lost update is write skew on a single key, and so an item anti-dependency cycle.
    "lost-update": ("write-skew", "G2-item"),
    "write-skew": ("G2",),
}

#: Anomalies that make a verdict "unknown" rather than valid when reported.
UNKNOWN_TYPES: frozenset[str] = frozenset({"empty-transaction-graph", "cycle-search-timeout"})

#: Aliases accepted on the command line for the same model.
ALIASES: Mapping[str, str] = {
    "strong-serializable": "strict-serializable",
    "conflict-serializable": "serializable",
    "PL-1": "read-uncommitted",
    "PL-2": "read-committed",
    "PL-2.99": "repeatable-read",
    "PL-3": "serializable",
    "PL-SI": "snapshot-isolation",
    "PL-SS": "strict-serializable",
}

#: The models this project documents and tests (a superset is accepted; see `MODELS`).
MAIN_MODELS: tuple[str, ...] = (
    "read-uncommitted",
    "read-committed",
    "repeatable-read",
    "snapshot-isolation",
    "serializable",
    "strong-session-snapshot-isolation",
    "strong-session-serializable",
    "strong-snapshot-isolation",
    "strict-serializable",
)

MODELS: frozenset[str] = frozenset(IMPLIES)


def canonical(model: str) -> str:
    """The model's name in `MODELS`; raises ValueError naming the known models otherwise."""
    name = ALIASES.get(model, model)
    if name not in MODELS:
        raise ValueError(f"unknown model {model!r}; known models: {', '.join(sorted(MODELS))}")
    return name


def _closure(start: Iterable[str], edges: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """Everything reachable from `start` (inclusive) along `edges`."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        x = todo.pop()
        if x not in seen:
            seen.add(x)
            todo.extend(edges.get(x, ()))
    return frozenset(seen)


def _reverse(edges: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    rev: dict[str, list[str]] = {}
    for a, bs in edges.items():
        for b in bs:
            rev.setdefault(b, []).append(a)
    return {k: tuple(v) for k, v in rev.items()}


_IMPLIED_BY = _reverse(IMPLIED)
_IMPLIED_MODELS_BY = _reverse(IMPLIES)
_FORBIDDEN_BY = _reverse(FORBIDS)


def implied_anomalies(anomalies: Iterable[str]) -> frozenset[str]:
    """The anomalies given plus every anomaly they imply."""
    return _closure(anomalies, IMPLIED)


def anomalies_implying(anomalies: Iterable[str]) -> frozenset[str]:
    """The anomalies given plus every anomaly whose presence would imply one of them."""
    return _closure(anomalies, _IMPLIED_BY)


@cache
def _forbidden_by_one(model: str) -> frozenset[str]:
    direct = [a for m in _closure([model], IMPLIES) for a in FORBIDS.get(m, ())]
    return anomalies_implying(direct)


def forbidden(models: Iterable[str]) -> frozenset[str]:
    """Every anomaly whose presence rules out at least one of `models` (Elle's prohibited set)."""
    out: set[str] = set()
    for m in models:
        out |= _forbidden_by_one(canonical(m))
    return frozenset(out)


def impossible_models(anomalies: Iterable[str]) -> frozenset[str]:
    """Models that cannot hold in a history exhibiting `anomalies`."""
    direct = {m for a in implied_anomalies(anomalies) for m in _FORBIDDEN_BY.get(a, ())}
    return models_implying(direct)


def weakest(models: Iterable[str]) -> frozenset[str]:
    """The members of `models` that imply no other member: the boundary Elle reports as `not`."""
    ms = frozenset(models)
    return frozenset(m for m in ms if not (_closure([m], IMPLIES) - {m}) & ms)


def boundary(anomalies: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(`not`, `also-not`): the weakest ruled-out models, then the other ruled-out ones, sorted."""
    out = impossible_models(anomalies)
    low = weakest(out)
    return tuple(sorted(low)), tuple(sorted(out - low))


def models_implying(ms: Iterable[str]) -> frozenset[str]:
    """The models given plus every model that implies one of them (all fail when these fail)."""
    return _closure(ms, _IMPLIED_MODELS_BY)
