"""Hand-made list-append histories for the Elle checker's tests.

A transaction is written as space-separated micro-ops: `ax5` appends 5 to key "x", `ry56` reads
[5, 6] from "y", `ry` reads the empty list. Keys are one letter, elements one digit each (enough for
every hand-made case; generated histories come from chaos.checkers.elle.simulate).

`History` places operations explicitly; `serial(...)` runs transactions one after the other (so each
realtime-precedes the next) on distinct processes; `concurrent(...)` invokes them all before any
completes (no realtime or process order between them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaos.checkers.elle import check
from chaos.checkers.elle.check import Verdict


def mops(spec: str) -> list[list[Any]]:
    out: list[list[Any]] = []
    for tok in spec.split():
        f, key, digits = tok[0], tok[1], tok[2:]
        if f == "a":
            out.append(["append", key, int(digits)])
        elif f == "r":
            out.append(["r", key, [int(d) for d in digits]])
        else:
            raise ValueError(f"bad micro-op {tok!r}")
    return out


def invocation(value: list[list[Any]]) -> list[list[Any]]:
    return [[f, k, None] if f == "r" else [f, k, v] for f, k, v in value]


class History:
    """Operations in the order they are added; index and time advance by one per operation."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self._open: dict[int, list[list[Any]]] = {}

    def _op(self, **fields: Any) -> None:
        n = len(self.ops)
        self.ops.append({"index": n, "time": n * 1_000_000, **fields})

    def invoke(self, process: int, spec: str) -> History:
        value = mops(spec)
        self._open[process] = value
        self._op(process=process, type="invoke", f="txn", value=invocation(value))
        return self

    def complete(self, process: int, outcome: str = "ok", **extra: Any) -> History:
        value = self._open.pop(process)
        self._op(process=process, type=outcome, f="txn", value=value if outcome == "ok" else invocation(value), **extra)
        return self

    def txn(self, process: int, spec: str, outcome: str = "ok", **extra: Any) -> History:
        return self.invoke(process, spec).complete(process, outcome, **extra)

    def mark(self, f: str, value: Any = None) -> History:
        self._op(process="nemesis", type="info", f=f, value=value)
        return self

    def check(self, model: str | list[str] = "strict-serializable", **kw: Any) -> Verdict:
        return check(self.ops, model, **kw)


def serial(*specs: str) -> History:
    h = History()
    for p, spec in enumerate(specs):
        h.txn(p, spec)
    return h


def concurrent(*specs: str) -> History:
    h = History()
    for p, spec in enumerate(specs):
        h.invoke(p, spec)
    for p in range(len(specs)):
        h.complete(p)
    return h


def indices(case: Mapping[str, Any]) -> list[int]:
    """The completion indices of a cycle's operations (first = last)."""
    return [op["index"] for op in case["cycle"]]
