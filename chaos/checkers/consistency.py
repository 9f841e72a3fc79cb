"""A list-append run's verdicts: the whole history, each path's view of it, lost acknowledged appends, and the
strongest consistency model that still holds (the rows of the scorecard's consistency table).

Input: the operations `chaos.clients.listappend` records (Elle's shape plus `path`, `ro`, `server`, ...). Pure: no
I/O, so it runs on a saved history too.

* The whole history is checked against strict-serializable, which forbids every anomaly the main models forbid, so
  one check names every model the history rules out; the strongest models left are the maximal ones of
  `MAIN_MODELS` not ruled out.
* A path's view: that path's transactions as they are, every other transaction with its reads left out (their
  appends stay: a path's reads must be explained by everybody's writes; their reads are not this path's
  observations). An anomaly in a path's view is one that path's clients saw.
* Lost appends: acknowledged (`ok`) appends absent from the final read of their key (Jepsen's final reads, recorded
  with a path starting `final:` once every fault was healed). Elle sees a lost append only when a realtime-later
  append to the same key is read (a G0-realtime cycle); the final reads see every one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from chaos.checkers.elle import MAIN_MODELS, check
from chaos.checkers.elle.models import IMPLIES, impossible_models

FINAL = "final:"


def is_txn(op: dict[str, Any]) -> bool:
    return op.get("f") == "txn" and op.get("process") != "nemesis"


def paths(ops: Iterable[dict[str, Any]]) -> list[str]:
    """The client paths of a history (final reads left out), RW paths first."""
    seen: dict[str, bool] = {}
    for op in ops:
        if is_txn(op) and not str(op.get("path", "")).startswith(FINAL):
            seen.setdefault(str(op.get("path")), bool(op.get("ro")))
    return sorted(seen, key=lambda p: (seen[p], p))


def view(ops: Sequence[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """`path`'s view (module doc): its ops and the final reads whole, others' ops without their reads; a
    transaction left with no micro-op is dropped (invocation and completion). A transaction is judged by its
    invocation's path, so its completion always gets the same treatment."""
    out: list[dict[str, Any]] = []
    how: dict[Any, str] = {}  # process -> "whole" | "writes" | "drop" for its open invocation
    for op in ops:
        if not is_txn(op):
            out.append(op)
            continue
        if op["type"] == "invoke":
            p = str(op.get("path"))
            writes = [m for m in op.get("value") or [] if m[0] != "r"]
            how[op["process"]] = "whole" if p == path or p.startswith(FINAL) else ("writes" if writes else "drop")
        mode = how.get(op["process"], "whole")
        if op["type"] != "invoke":
            how.pop(op["process"], None)
        if mode == "whole":
            out.append(op)
        elif mode == "writes":
            value = op.get("value")
            out.append(op if value is None else {**op, "value": [m for m in value if m[0] != "r"]})
    return out


def lost_appends(ops: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Acknowledged appends missing from the final reads (`lost`), and appends of unknown outcome found there
    (`recovered`); `unread` counts acknowledged appends to keys no final read covered."""
    final: dict[Any, set[int]] = {}
    for op in ops:
        if is_txn(op) and op["type"] == "ok" and str(op.get("path", "")).startswith(FINAL):
            for f, k, v in op["value"]:
                if f == "r":
                    final[k] = set(v or [])
    lost, unread, recovered = [], 0, 0
    for op in ops:
        if not is_txn(op) or op["type"] not in ("ok", "info") or str(op.get("path", "")).startswith(FINAL):
            continue
        for f, k, v in op.get("value") or []:
            if f != "append":
                continue
            if k not in final:
                unread += op["type"] == "ok"
            elif op["type"] == "ok" and v not in final[k]:
                lost.append({"key": k, "value": v, "index": op["index"], "path": op.get("path"),
                             "server": op.get("server"), "wall": op.get("wall")})  # fmt: skip
            elif op["type"] == "info" and v in final[k]:
                recovered += 1
    return {"lost": lost, "unread": unread, "recovered": recovered, "final_keys": len(final)}


def strongest(ruled_out: Iterable[str]) -> list[str]:
    """The strongest of the main models not ruled out (several when incomparable); [] when none holds."""
    holding = [m for m in MAIN_MODELS if m not in set(ruled_out)]

    def implied_by(m: str, other: str) -> bool:
        todo, seen = [other], set()
        while todo:
            x = todo.pop()
            for y in IMPLIES.get(x, ()):
                if y == m:
                    return True
                if y not in seen:
                    seen.add(y)
                    todo.append(y)
        return False

    return [m for m in holding if not any(o != m and implied_by(m, o) for o in holding)]


def verdict_row(ops: Sequence[dict[str, Any]], *, time_limit: float = 5.0) -> dict[str, Any]:
    """Check `ops` against strict-serializable: the verdict, the anomalies by type, what is ruled out, what holds."""
    v = check(ops, "strict-serializable", time_limit=time_limit)
    d = v.to_dict()
    ruled = impossible_models(d["anomaly-types"]) | set(d["not"]) | set(d["also-not"])
    return {
        "valid": d["valid"],
        "anomalies": {k: len(c) for k, c in d["anomalies"].items()},
        "not": d["not"],
        "strongest": strongest(ruled) if d["valid"] is not True else ["strict-serializable"],
        "unknown": d["valid"] == "unknown",
        "verdict": d,
    }


def holds(row: dict[str, Any], model: str) -> bool:
    """Whether `model` still holds in a verdict row (nothing found rules it out, the search did not run out)."""
    if row["valid"] is True:
        return True
    ruled = impossible_models(row["verdict"]["anomaly-types"]) | set(row["not"]) | set(row["verdict"]["also-not"])
    return model not in ruled and not row["unknown"]


def counts(ops: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Completions per path: ok / fail / info."""
    c: dict[str, Counter] = {}
    for op in ops:
        if is_txn(op) and op["type"] != "invoke":
            c.setdefault(str(op.get("path")), Counter())[op["type"]] += 1
    return {p: {o: n.get(o, 0) for o in ("ok", "fail", "info")} for p, n in sorted(c.items())}


def analyse(ops: Sequence[dict[str, Any]], *, time_limit: float = 5.0) -> dict[str, Any]:
    """Everything a scenario reports: the whole history's row, one row per path, lost appends, counts."""
    ops = list(ops)
    whole = verdict_row(ops, time_limit=time_limit)
    per_path = {p: verdict_row(view(ops, p), time_limit=time_limit) for p in paths(ops)}
    lost = lost_appends(ops)
    rw = rw_only(ops)
    return {
        "whole": whole,
        "rw": verdict_row(rw, time_limit=time_limit),
        # the RW paths with the lost acknowledged appends forgiven (what asynchronous replication allows)
        "rw_forgiven": verdict_row(forgive_lost(rw, lost["lost"]), time_limit=time_limit) if lost["lost"] else None,
        "paths": per_path,
        # each path's view with the lost tail forgiven (what the scenario's promise is checked on)
        "paths_forgiven": {
            p: verdict_row(view(forgive_lost(ops, lost["lost"]), p), time_limit=time_limit) for p in per_path
        }
        if lost["lost"]
        else None,
        "lost": lost,
        "counts": counts(ops),
        "staleness": staleness(ops),
    }


def brief(row: dict[str, Any]) -> dict[str, Any]:
    """A verdict row without the full verdict (for measurement rows and summaries)."""
    return {k: v for k, v in row.items() if k != "verdict"}


def forgive_lost(ops: Sequence[dict[str, Any]], lost: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`ops` with every transaction that had an acknowledged append lost (`lost_appends`) turned `info` (outcome
    unknown): what asynchronous replication promises (a bounded tail of acknowledged commits may vanish at a
    failover), so that a check of the result asks whether anything else went wrong. A read that saw a lost value
    before it vanished is still there: reads going back in time are not forgiven."""
    gone = {x["index"] for x in lost}

    def unknown(op: dict[str, Any]) -> dict[str, Any]:
        value = [[f, k, None] if f == "r" else [f, k, v] for f, k, v in op["value"]]
        return {**op, "type": "info", "value": value, "forgiven": "lost append"}

    return [unknown(op) if op.get("index") in gone else op for op in ops]


def rw_only(ops: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The RW paths' transactions (and the final reads and marks): what the write paths promise, without the RO ones."""
    return [o for o in ops if not is_txn(o) or not o.get("ro")]


def staleness(ops: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """How far back in time each path read: for every ok read of a key, the age (s, monotonic) of the oldest
    acknowledged append to that key that had completed before the read was invoked and is missing from it. Per path:
    the reads that missed something (`stale`), of how many (`reads`), the worst age and when (`max_s`, `at_wall`).
    A quantity behind the realtime anomalies: 0 on a strictly serializable path."""
    done: dict[Any, list[tuple[int, int]]] = {}  # key -> [(completion time ns, value)] of ok appends
    invoked: dict[Any, dict[str, Any]] = {}
    reads: list[tuple[dict[str, Any], int]] = []  # (completion, invocation time)
    for op in ops:
        if not is_txn(op):
            continue
        if op["type"] == "invoke":
            invoked[op["process"]] = op
            continue
        inv = invoked.pop(op["process"], None)
        if op["type"] != "ok" or inv is None:
            continue
        for f, k, v in op["value"]:
            if f == "append":
                done.setdefault(k, []).append((op["time"], v))
        reads.append((op, inv["time"]))
    out: dict[str, dict[str, Any]] = {}
    for op, t in reads:
        p = str(op.get("path"))
        if p.startswith(FINAL):
            continue
        row = out.setdefault(p, {"reads": 0, "stale": 0, "max_s": 0.0, "at_wall": None})
        worst = 0
        for f, k, v in op["value"]:
            if f != "r":
                continue
            row["reads"] += 1
            seen = set(v or [])
            missing = [c for c, x in done.get(k, ()) if c < t and x not in seen]
            if missing:
                worst = max(worst, t - min(missing))
        if worst:
            row["stale"] += 1
            if worst / 1e9 > row["max_s"]:
                row["max_s"], row["at_wall"] = round(worst / 1e9, 3), op.get("wall")
    return out
