"""Explanations in words, Elle's way: name the transactions, say why each precedes the next, and end
on the contradiction. Also the evidence behind each edge (which key and elements), the server each
operation ran on when the history records it, and the fault marks around each anomaly.

Everything here runs only for reported anomalies, so it may be slow and thorough: each edge is
justified again from the history rather than remembered from graph construction.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from typing import Any

from chaos.checkers.elle.cycles import Cycle, Exists, Timeout
from chaos.checkers.elle.history import APPEND, READ, Mark, Observed
from chaos.checkers.elle.infer import (
    INIT,
    PROCESS,
    REALTIME,
    REL_NAMES,
    RW,
    WR,
    WW,
    Orders,
)

#: Extra op keys shown first, in this order, when a history carries them.
SERVER_KEYS = ("node", "server", "in_recovery", "timeline", "lsn", "path")
MAX_MARKS_DURING = 5
_V2 = "value'"  # Elle's name for the element appended second


def _j(x: Any) -> str:
    """Compact JSON for values inside sentences: [1, 2] -> [1 2] reads like Elle's output."""
    if isinstance(x, list):
        return "[" + " ".join(_j(e) for e in x) + "]"
    return json.dumps(x, default=str)


@dataclass
class Context:
    """What explanations need: the transactions, the version orders, the marks by index."""

    o: Observed
    orders: Orders

    def __post_init__(self) -> None:
        self.mark_index = [m.index for m in self.o.marks]

    # ------------------------------------------------------------------ operations

    def where(self, t: int) -> str:
        """Where txn `t` ran, from the optional keys its operations carried (empty when none)."""
        extra = self.o.extras.get(t)
        if not extra:
            return ""
        keys = [k for k in SERVER_KEYS if k in extra] + sorted(k for k in extra if k not in SERVER_KEYS)
        return " [" + " ".join(f"{k}={_j(extra[k])}" for k in keys) + "]"

    def describe(self, t: int) -> str:
        o = self.o
        end = "never completed" if o.cmp_index[t] < 0 else f"index {o.cmp_index[t]}"
        return (
            f"{end} (invoked at {o.inv_index[t]}), process {o.process[t]}, "
            f"{('ok', 'info', 'fail')[o.outcome[t]]}{self.where(t)}: {json.dumps(o.txn_value(t))}"
        )

    def short(self, t: int) -> str:
        o = self.o
        idx = o.cmp_index[t] if o.cmp_index[t] >= 0 else o.inv_index[t]
        return f"index {idx} (process {o.process[t]}{self.where(t)})"

    def mop(self, m: int) -> list[Any]:
        o = self.o
        key = o.keys[o.m_key[m]]
        return ["append", key, o.m_val[m]] if o.m_kind[m] == APPEND else ["r", key, o.read_value(m)]

    # ------------------------------------------------------------------ marks

    def marks_around(self, txns: list[int]) -> list[dict[str, Any]]:
        """The nearest mark before the first invocation, marks during, the nearest after the end."""
        o = self.o
        if not o.marks or not txns:
            return []
        lo = min(o.inv_index[t] for t in txns)
        hi = max(o.cmp_index[t] if o.cmp_index[t] >= 0 else o.inv_index[t] for t in txns)
        i = bisect.bisect_left(self.mark_index, lo)
        j = bisect.bisect_right(self.mark_index, hi)
        picked: list[tuple[str, Mark]] = []
        if i > 0:
            picked.append(("before", o.marks[i - 1]))
        picked += [("during", m) for m in o.marks[i:j][:MAX_MARKS_DURING]]
        if j < len(o.marks):
            picked.append(("after", o.marks[j]))
        return [{"when": when, **m.to_dict()} for when, m in picked]

    @staticmethod
    def marks_text(marks: list[dict[str, Any]]) -> str:
        if not marks:
            return ""
        parts = [
            f"{m['when']}: index {m['index']} {m['process']} {m['f']}"
            + ("" if m["value"] is None else f" {_j(m['value'])}")
            for m in marks
        ]
        return "\nFault marks: " + "; ".join(parts) + "."

    # ------------------------------------------------------------------ edges

    def _mop_index(self, t: int, pred: Any) -> int | None:
        for i, m in enumerate(self.o.mops(t)):
            if pred(m):
                return i
        return None

    def step(self, a: int, b: int, rel: int) -> dict[str, Any]:
        """The evidence that `a` precedes `b` through `rel`, in Elle's step shape."""
        o = self.o
        if rel == PROCESS:
            return {"type": "process", "process": o.process[a]}
        if rel == REALTIME:
            return {
                "type": "realtime",
                "a-index": o.cmp_index[a],
                "b-invoke-index": o.inv_index[b],
                "a-time": o.cmp_time[a],
                "b-time": o.inv_time[b],
            }
        for i, m in enumerate(o.mops(b)):
            found = self._data_step(a, b, rel, i, m)
            if found is not None:
                return found
        raise AssertionError(f"no evidence for {REL_NAMES[rel]} edge {a} -> {b}")

    def _data_step(self, a: int, b: int, rel: int, i: int, m: int) -> dict[str, Any] | None:
        o, kid = self.o, self.o.m_key[m]
        key = o.keys[kid]
        if rel == WR and o.m_kind[m] == READ and o.m_len[m]:
            e = o.m_val[m]
            if o.writer[kid].get(e) == a:
                am = self._mop_index(a, lambda x: o.m_kind[x] == APPEND and o.m_key[x] == kid and o.m_val[x] == e)
                return {"type": "wr", "key": key, "value": e, "a-mop-index": am, "b-mop-index": i}
        if rel in (WW, RW) and o.m_kind[m] == APPEND:
            v = o.m_val[m]
            prev = self.orders.previous(kid, v)
            if rel == WW and prev is not INIT and o.writer[kid].get(prev) == a:
                am = self._mop_index(a, lambda x: o.m_kind[x] == APPEND and o.m_key[x] == kid and o.m_val[x] == prev)
                return {"type": "ww", "key": key, "value": prev, "value'": v, "a-mop-index": am, "b-mop-index": i}
            if rel == RW:

                def reads_prev(x: int) -> bool:
                    if o.m_kind[x] != READ or o.m_key[x] != kid:
                        return False
                    return o.m_len[x] == 0 if prev is INIT else bool(o.m_len[x]) and o.m_val[x] == prev

                am = self._mop_index(a, reads_prev)
                if am is not None:
                    return {
                        "type": "rw",
                        "key": key,
                        "value": "init" if prev is INIT else prev,
                        "value'": v,
                        "a-mop-index": am,
                        "b-mop-index": i,
                    }
        return None

    def step_text(self, s: dict[str, Any], a: int, b: int, an: str, bn: str) -> str:
        o = self.o
        kind = s["type"]
        if kind == "process":
            return f"process {s['process']} executed {an} before {bn}"
        if kind == "realtime":
            dt = (s["b-time"] - s["a-time"]) / 1e9
            gap = f" {dt:.3f} seconds" if dt > 0 else " just"
            return (
                f"{an} completed at index {s['a-index']},{gap} before the invocation of {bn}, "
                f"at index {s['b-invoke-index']}"
            )
        key = _j(s["key"])
        if kind == "ww":
            return f"{bn} appended {_j(s[_V2])} after {an} appended {_j(s['value'])} to key {key}"
        if kind == "wr":
            read = o.read_value(o.mop_first[b] + s["b-mop-index"])
            return f"{bn} read {_j(read)} of key {key}, which ends with {an}'s append of {_j(s['value'])}"
        read = o.read_value(o.mop_first[a] + s["a-mop-index"])
        if s["value"] == "init":
            return (
                f"{an} read the initial (empty) state {_j(read)} of key {key}, and {bn} appended "
                f"{_j(s[_V2])} to it: {an} did not observe {bn}'s append"
            )
        return (
            f"{an} read {_j(read)} of key {key} and {bn} appended {_j(s[_V2])} after it: "
            f"{an} did not observe {bn}'s append"
        )

    # ------------------------------------------------------------------ whole anomalies

    def cycle(self, name: str, c: Cycle) -> dict[str, Any]:
        """An explained cycle: its operations, the evidence of each edge, words, and nearby marks."""
        txns = list(c.nodes[:-1])
        names = [f"T{i + 1}" for i in range(len(txns))]
        steps = [self.step(a, b, r) for a, b, r in zip(c.nodes, c.nodes[1:], c.rels, strict=False)]
        lines = [f"{name}", "Let:"] + [f"  {n} = {self.describe(t)}" for n, t in zip(names, txns, strict=True)]
        lines.append("Then:")
        k = len(txns)
        for i, s in enumerate(steps):
            an, bn = names[i], names[(i + 1) % k]
            why = self.step_text(s, c.nodes[i], c.nodes[i + 1], an, bn)
            lines.append(
                f"  - However, {an} < {bn}, because {why}: a contradiction!"
                if i == k - 1
                else f"  - {an} < {bn}, because {why}."
            )
        marks = self.marks_around(txns)
        return {
            "type": name,
            "cycle": [self.o.op_dict(t) for t in c.nodes],
            "steps": steps,
            "rels": [REL_NAMES[r] for r in c.rels],
            "marks": marks,
            "explanation": "\n".join(lines) + self.marks_text(marks),
        }

    def exists(self, e: Exists) -> dict[str, Any]:
        idx = [self.o.cmp_index[t] for t in e.scc]
        shown = ", ".join(map(str, idx[:12])) + (", ..." if len(idx) > 12 else "")
        sub = " ".join(x for x in _flat(e.spec.subgraph()) if x not in ("union", "extension"))
        text = (
            f"The {sub} edges among {len(idx)} transactions (indices {shown}) contain a cycle"
            + (" whose rw edges are never adjacent" if e.spec.extension else "")
            + f", so {e.spec.model} cannot hold; the bounded search did not isolate a specific cycle."
        )
        marks = self.marks_around(list(e.scc))
        return {
            "type": e.spec.type,
            "not": e.spec.model,
            "subgraph": e.spec.subgraph(),
            "scc-size": len(idx),
            "scc": idx,
            "marks": marks,
            "explanation": text + self.marks_text(marks),
        }

    @staticmethod
    def timeout(t: Timeout, limit: float) -> dict[str, Any]:
        checked = ", ".join(t.does_not_contain) or "nothing else"
        return {
            "type": "cycle-search-timeout",
            "anomaly-spec-type": t.spec_type,
            "does-not-contain": list(t.does_not_contain),
            "scc-size": t.scc_size,
            "explanation": (
                f"The search for {t.spec_type} in a strongly connected component of {t.scc_size} "
                f"transactions ran out of its {limit:g} s budget (it had ruled out: {checked}). "
                "That component is unknown, not valid."
            ),
        }


def _flat(x: Any) -> list[str]:
    return [y for e in x for y in _flat(e)] if isinstance(x, list) else [str(x)]


def render_case(ctx: Context, kind: str, case: dict[str, Any]) -> dict[str, Any]:
    """A non-cycle case with operations in place of txn ids, its words, and nearby marks."""
    o = ctx.o
    out: dict[str, Any] = {}
    txns: list[int] = []
    for k, v in case.items():
        if k in ("op", "writer"):
            out[k] = o.op_dict(v)
            txns.append(v)
        elif k == "txns":
            out[k] = [x if isinstance(x, str) else o.op_dict(x) for x in v]
            txns += [x for x in v if not isinstance(x, str)]
        elif k == "mop":
            out[k] = ctx.mop(v)
        elif k == "mops":
            out["ops"] = [o.op_dict(o.m_txn[m]) for m in v]
            txns += [o.m_txn[m] for m in v]
        elif k == "key":
            out[k] = o.keys[v]
        elif k == "duplicates":
            out[k] = {str(e): c for e, c in v.items()}
        else:
            out[k] = v
    marks = ctx.marks_around(txns)
    out["marks"] = marks
    out["explanation"] = _WORDS[kind](ctx, case) + ctx.marks_text(marks)
    return out


def _read_of(ctx: Context, case: dict[str, Any]) -> tuple[str, str]:
    mop = ctx.mop(case["mop"])
    return _j(mop[2]), _j(mop[1])


def _g1a(ctx: Context, c: dict[str, Any]) -> str:
    read, key = _read_of(ctx, c)
    return (
        f"{ctx.short(c['op'])} read {read} of key {key}, which contains {c['element']}, appended by "
        f"{ctx.short(c['writer'])}, which failed: an aborted read."
    )


def _g1b(ctx: Context, c: dict[str, Any]) -> str:
    read, key = _read_of(ctx, c)
    return (
        f"{ctx.short(c['op'])} read {read} of key {key}, ending with {c['element']}, an intermediate append of "
        f"{ctx.short(c['writer'])} (it appended to key {key} again later), so {read} was never committed."
    )


def _dirty(ctx: Context, c: dict[str, Any]) -> str:
    first, last = c["txns"][0], c["txns"][-1]
    return (
        f"Key {_j(ctx.o.keys[c['key']])}: {_j(c['values'][0])} was appended by {ctx.short(first)}, which failed, "
        f"yet the committed {ctx.short(last)} appended {_j(c['values'][-1])} on top of it "
        f"(versions {_j(c['values'])}): committed state built on an aborted write."
    )


def _incompatible(ctx: Context, c: dict[str, Any]) -> str:
    (a, b), (ma, mb) = c["values"], c["mops"]
    return (
        f"Key {_j(ctx.o.keys[c['key']])} was read as {_j(a)} by {ctx.short(ctx.o.m_txn[ma])} and as {_j(b)} by "
        f"{ctx.short(ctx.o.m_txn[mb])}; the first is not a prefix of the second, so no single order of "
        "appends explains both."
    )


def _dups(ctx: Context, c: dict[str, Any]) -> str:
    read, key = _read_of(ctx, c)
    dups = ", ".join(f"{e} ({n} times)" for e, n in c["duplicates"].items())
    return f"{ctx.short(c['op'])} read {read} of key {key}, in which {dups} recur, yet each value is appended once."


def _internal(ctx: Context, c: dict[str, Any]) -> str:
    read, key = _read_of(ctx, c)
    return (
        f"{ctx.short(c['op'])} read {read} of key {key}, but its own earlier micro-ops imply "
        f"{_j(c['expected'])}: the transaction contradicts itself."
    )


def _future(ctx: Context, c: dict[str, Any]) -> str:
    read, key = _read_of(ctx, c)
    return (
        f"{ctx.short(c['op'])} read {read} of key {key}, which contains {c['element']}, a value that "
        "the same transaction appends only later."
    )


def _lost(ctx: Context, c: dict[str, Any]) -> str:
    who = ", ".join(ctx.short(t) for t in c["txns"])
    return (
        f"{len(c['txns'])} committed transactions ({who}) read the same version {_j(c['value'])} of key "
        f"{_j(ctx.o.keys[c['key']])} and each appended to it: all but one of those updates were lost."
    )


_WORDS = {
    "G1a": _g1a,
    "G1b": _g1b,
    "dirty-update": _dirty,
    "incompatible-order": _incompatible,
    "duplicate-elements": _dups,
    "internal": _internal,
    "future-read": _future,
    "lost-update": _lost,
}

EMPTY_GRAPH = {
    "type": "empty-transaction-graph",
    "explanation": (
        "No dependency between transactions could be inferred (no transaction observed or "
        "overwrote another's append, and no order was needed): nothing can be concluded."
    ),
}


def report(verdict_dict: dict[str, Any], max_per_type: int = 3) -> str:
    """A human report of a verdict's dictionary (the CLI's output without --json)."""
    v = verdict_dict
    state = {True: "VALID", False: "NOT VALID", "unknown": "UNKNOWN"}[v["valid"]]
    models = ", ".join(v.get("model", []))
    lines = [f"txn-check: {state} under {models}"]
    st = v.get("stats", {})
    if st:
        lines.append(
            f"history: {st.get('transactions', 0)} transactions ({st.get('ok', 0)} ok, {st.get('info', 0)} "
            f"info, {st.get('fail', 0)} fail), {st.get('marks', 0)} marks, {st.get('keys', 0)} keys; "
            f"{st.get('edges', 0)} edges, {st.get('components', 0)} cyclic components; "
            f"checked in {st.get('seconds', 0):.2f} s"
        )
    if v["not"]:
        lines.append(
            "rules out: "
            + ", ".join(v["not"])
            + (f" (and so also {', '.join(v['also-not'])})" if v.get("also-not") else "")
        )
    for kind in v["anomaly-types"]:
        cases = v["anomalies"][kind]
        lines.append("")
        lines.append(f"{kind}: {len(cases)}")
        for i, c in enumerate(cases[:max_per_type]):
            text = c.get("explanation", "")
            lines.append(f"  #{i + 1} " + text.replace("\n", "\n     "))
        if len(cases) > max_per_type:
            lines.append(f"  ... {len(cases) - max_per_type} more (use --json for all)")
    return "\n".join(lines) + "\n"
