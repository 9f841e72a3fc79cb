"""Anomalies that are not cycles: aborted and intermediate reads, dirty updates, impossible orders,
duplicates, a transaction contradicting itself, reading its own future, and lost updates.

Each function returns raw cases that name transactions by txn id and micro-ops by their global mop
number; `explain.render_case` turns them into Elle-shaped dictionaries with operations and words.
The within-transaction cases (internal, future-read, duplicate-elements) and the incompatible orders
were found while loading, when the full read values were at hand; here they are only collected.
"""

from __future__ import annotations

from typing import Any

from chaos.checkers.elle.history import FAIL, INFO, OK, READ, Observed
from chaos.checkers.elle.infer import Orders

Case = dict[str, Any]


def g1a(o: Observed) -> list[Case]:
    """An ok transaction read an element appended by a transaction that failed (aborted read)."""
    failed: dict[int, dict[int, int]] = {}
    for kid, w in enumerate(o.writer):
        f = {v: t for v, t in w.items() if o.outcome[t] == FAIL}
        if f:
            failed[kid] = f
    if not failed:
        return []
    cases: list[Case] = []
    for m, kind in enumerate(o.m_kind):
        if kind != READ or o.m_key[m] not in failed or o.outcome[o.m_txn[m]] != OK:
            continue
        bad = failed[o.m_key[m]]
        for e in o.read_value(m) or ():
            if e in bad:
                cases.append({"op": o.m_txn[m], "mop": m, "writer": bad[e], "element": e})
    return cases


def g1b(o: Observed) -> list[Case]:
    """An ok read ended on an element its writer later superseded in the same transaction."""
    if not o.intermediate:
        return []
    cases: list[Case] = []
    for m, kind in enumerate(o.m_kind):
        if kind != READ or not o.m_len[m]:
            continue
        inter = o.intermediate.get(o.m_key[m])
        if inter is None:
            continue
        t, e = o.m_txn[m], o.m_val[m]
        w = inter.get(e)
        if w is not None and w != t and o.outcome[t] == OK:
            cases.append({"op": t, "mop": m, "writer": w, "element": e})
    return cases


def dirty_update(o: Observed, orders: Orders) -> list[Case]:
    """A committed append placed directly on state that only an aborted append produced.

    Walk each key's version order keeping the last transaction whose outcome is known; info writers
    (and elements nobody appended) neither confirm nor clear the aborted state in front of them.
    """
    cases: list[Case] = []
    for kid, order in enumerate(orders.order):
        w = o.writer[kid]
        if not any(o.outcome[w[v]] == FAIL for v in order if v in w):
            continue
        last, last_outcome, values = -1, OK, []
        for v in order:
            t = w.get(v, -1)
            outcome = o.outcome[t] if t >= 0 else INFO
            if outcome == INFO:
                values.append(v)
            elif outcome == OK:
                if last_outcome == FAIL:
                    cases.append({"key": kid, "values": [*values, v], "txns": [last, "...", t]})
                last, last_outcome, values = t, OK, [v]
            elif last_outcome == FAIL:
                values.append(v)
            else:
                last, last_outcome, values = t, FAIL, [v]
    return cases


def incompatible_order(o: Observed) -> list[Case]:
    """Two reads of a key where neither is a prefix of the other: shorter first, as Elle shows them."""
    cases: list[Case] = []
    for kid, (ma, mb) in o.incompatible.items():
        a, b = o.read_value(ma) or [], o.read_value(mb) or []
        if len(b) < len(a):
            (ma, a), (mb, b) = (mb, b), (ma, a)
        cases.append({"key": kid, "values": [a, b], "mops": [ma, mb]})
    return cases


def duplicate_elements(o: Observed) -> list[Case]:
    return [{"op": t, "mop": m, "duplicates": d} for t, m, d in o.duplicates]


def internal(o: Observed) -> list[Case]:
    return [{"op": t, "mop": m, "expected": e} for t, m, e in o.internal]


def future_read(o: Observed) -> list[Case]:
    return [{"op": t, "mop": m, "element": e} for t, m, e in o.future_read]


def lost_update(o: Observed) -> list[Case]:
    """Two or more committed transactions read the same version of a key and both appended to it."""
    cases: list[Case] = []
    for (kid, _, _), hits in o.lost_update.items():
        txns = sorted({t for t, _ in hits})
        if len(txns) > 1:
            cases.append({"key": kid, "value": o.read_value(hits[0][1]) or [], "txns": txns})
    return cases


def find_all(o: Observed, orders: Orders) -> dict[str, list[Case]]:
    """Every non-cycle anomaly type found, keyed by Elle's name."""
    found = {
        "G1a": g1a(o),
        "G1b": g1b(o),
        "dirty-update": dirty_update(o, orders),
        "incompatible-order": incompatible_order(o),
        "duplicate-elements": duplicate_elements(o),
        "internal": internal(o),
        "future-read": future_read(o),
        "lost-update": lost_update(o),
    }
    return {k: v for k, v in found.items() if v}
