"""Read a list-append history (Elle's shape) into a compact, integer-indexed store.

One pass over the operations, in index order, does everything that needs a transaction's full values:
contract validation, pairing invocations with completions, the per-transaction anomalies (internal,
future-read, duplicate-elements, lost-update candidates), the per-key version snapshots that reads
are compared against (incompatible-order), the writer and intermediate-write indexes, and the process
and realtime orders. Afterwards only arrays of integers and one shared list per observed key version
remain, which is what lets a million transactions fit in a few hundred megabytes: a read is stored as
(key id, snapshot id, length) instead of its list.

Operations whose `process` is `"nemesis"` or whose `f` is not `"txn"` are marks (faults, heals,
leader changes): they are kept aside for explanations and ignored by the analysis.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OK, INFO, FAIL = 0, 1, 2
OUTCOMES = {"ok": OK, "info": INFO, "fail": FAIL}
OUTCOME_NAMES = ("ok", "info", "fail")
APPEND, READ, READ_UNKNOWN = 0, 1, 2
#: Keys of an op that belong to the contract; any other key is carried through to explanations.
CORE_KEYS = frozenset({"index", "time", "process", "type", "f", "value"})
_I64 = 1 << 63


class HistoryError(ValueError):
    """Bad input: the message is one line naming where (line N / op #N) and what is wrong."""


@dataclass(frozen=True)
class Mark:
    """A fault-injection or other non-transaction record, shown next to the anomalies it surrounds."""

    index: int
    time: int | None
    process: Any
    type: Any
    f: Any
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "time": self.time,
            "process": self.process,
            "type": self.type,
            "f": self.f,
            "value": self.value,
        }

    def describe(self) -> str:
        what = f"{self.f}" if self.value is None else f"{self.f} {json.dumps(self.value, default=str)}"
        return f"index {self.index}: {self.process} {self.type or ''} {what}".replace("  ", " ")


@dataclass
class Observed:
    """Every transaction of a history, column by column (txn id = order of invocation)."""

    keys: list[Any] = field(default_factory=list)
    key_ids: dict[Any, int] = field(default_factory=dict)
    outcome: bytearray = field(default_factory=bytearray)
    process: list[Any] = field(default_factory=list)
    inv_index: array = field(default_factory=lambda: array("q"))
    cmp_index: array = field(default_factory=lambda: array("q"))
    inv_time: array = field(default_factory=lambda: array("q"))
    cmp_time: array = field(default_factory=lambda: array("q"))
    mop_first: array = field(default_factory=lambda: array("q"))
    mop_count: array = field(default_factory=lambda: array("q"))
    extras: dict[int, dict[str, Any]] = field(default_factory=dict)
    # micro-ops, in completion order; a txn's are contiguous
    m_kind: bytearray = field(default_factory=bytearray)
    m_txn: array = field(default_factory=lambda: array("q"))
    m_key: array = field(default_factory=lambda: array("q"))
    m_val: array = field(default_factory=lambda: array("q"))  # append: the value; read: the last element
    m_len: array = field(default_factory=lambda: array("q"))  # read: its length
    m_snap: array = field(default_factory=lambda: array("q"))  # read: the snapshot it is a prefix of
    snaps: list[list[int]] = field(default_factory=list)
    main_snap: list[int] = field(default_factory=list)  # per key: the longest read so far
    writer: list[dict[int, int]] = field(default_factory=list)  # per key: element -> txn (any outcome)
    intermediate: dict[int, dict[int, int]] = field(default_factory=dict)
    incompatible: dict[int, tuple[int, int]] = field(default_factory=dict)  # key -> (mop a, mop b)
    internal: list[tuple[int, int, list[Any]]] = field(default_factory=list)  # (txn, mop, expected)
    future_read: list[tuple[int, int, int]] = field(default_factory=list)  # (txn, mop, element)
    duplicates: list[tuple[int, int, dict[int, int]]] = field(default_factory=list)
    lost_update: dict[tuple[int, int, int], list[tuple[int, int]]] = field(default_factory=dict)
    process_src: array = field(default_factory=lambda: array("q"))
    process_dst: array = field(default_factory=lambda: array("q"))
    rt_src: array = field(default_factory=lambda: array("q"))
    rt_dst: array = field(default_factory=lambda: array("q"))
    rt_nonempty: bool = False  # some realtime precedence existed (even into failed transactions)
    marks: list[Mark] = field(default_factory=list)
    dangling: int = 0  # invocations that never completed (treated as info)

    @property
    def n(self) -> int:
        return len(self.outcome)

    def key_id(self, key: Any) -> int:
        kid = self.key_ids.get(key)
        if kid is None:
            kid = self.key_ids[key] = len(self.keys)
            self.keys.append(key)
            self.main_snap.append(-1)
            self.writer.append({})
        return kid

    def read_value(self, m: int) -> list[int] | None:
        """The list a read micro-op returned (None for an unknown read of an info transaction)."""
        if self.m_kind[m] == READ_UNKNOWN:
            return None
        n = self.m_len[m]
        return [] if n == 0 else self.snaps[self.m_snap[m]][:n]

    def mops(self, t: int) -> range:
        first = self.mop_first[t]
        return range(first, first + self.mop_count[t])

    def txn_value(self, t: int) -> list[list[Any]]:
        """The transaction's micro-ops as in the history (completion values)."""
        out: list[list[Any]] = []
        for m in self.mops(t):
            key = self.keys[self.m_key[m]]
            if self.m_kind[m] == APPEND:
                out.append(["append", key, self.m_val[m]])
            else:
                out.append(["r", key, self.read_value(m)])
        return out

    def op_dict(self, t: int) -> dict[str, Any]:
        """The completion operation of txn `t` in the JSONL shape, with carried-through extra keys."""
        d: dict[str, Any] = {
            "index": self.cmp_index[t],
            "time": self.cmp_time[t],
            "process": self.process[t],
            "type": OUTCOME_NAMES[self.outcome[t]],
            "f": "txn",
            "value": self.txn_value(t),
            "invoke-index": self.inv_index[t],
        }
        if self.cmp_index[t] < 0:
            d["index"], d["time"], d["never-completed"] = None, None, True
        d.update(self.extras.get(t, {}))
        return d


def _is_int(x: Any) -> bool:
    return type(x) is int


def _bad(where: str, msg: str) -> HistoryError:
    return HistoryError(f"{where}: {msg}")


def _parse_mops(value: Any, where: str) -> list[tuple[int, Any, Any]]:
    """Validate a transaction value; reads become lists (ok), or None when not observed."""
    if not isinstance(value, list):
        raise _bad(where, f"value must be a list of micro-ops, got {type(value).__name__}")
    out: list[tuple[int, Any, Any]] = []
    for i, mop in enumerate(value):
        if not isinstance(mop, list) or len(mop) != 3:
            raise _bad(where, f"micro-op {i} must be [f, key, value], got {json.dumps(mop, default=str)}")
        f, k, v = mop
        if not (type(k) is str or _is_int(k)):
            raise _bad(where, f"micro-op {i}: key must be a string or an integer, got {json.dumps(k)}")
        if f == "append":
            if not _is_int(v) or not -_I64 <= v < _I64:
                raise _bad(where, f"micro-op {i}: appended value must be a 64-bit integer, got {json.dumps(v)}")
            out.append((APPEND, k, v))
        elif f == "r":
            if v is None:
                out.append((READ_UNKNOWN, k, None))
            elif isinstance(v, list) and all(type(e) is int for e in v):
                if v and (min(v) < -_I64 or max(v) >= _I64):
                    raise _bad(where, f"micro-op {i}: read elements must be 64-bit integers")
                out.append((READ, k, v))
            else:
                raise _bad(where, f"micro-op {i}: a read is null or a list of integers, got {json.dumps(v)}")
        else:
            raise _bad(where, f'micro-op {i}: f must be "append" or "r", got {json.dumps(f)}')
    return out


def _same_shape(inv: list[tuple[int, Any, Any]], cmp: list[tuple[int, Any, Any]]) -> int | None:
    """The first micro-op where a completion disagrees with its invocation, or None."""
    if len(inv) != len(cmp):
        return min(len(inv), len(cmp))
    for i, (a, b) in enumerate(zip(inv, cmp, strict=True)):
        if (a[0] == APPEND) != (b[0] == APPEND) or a[1] != b[1] or type(a[1]) is not type(b[1]):
            return i
        if a[0] == APPEND and a[2] != b[2]:
            return i
    return None


def is_mark(op: dict[str, Any]) -> bool:
    """Nemesis records and any operation that is not a transaction."""
    return op.get("process") == "nemesis" or op.get("f") != "txn"


class _Loader:
    """Streams operations into an `Observed`; one instance per history."""

    def __init__(self, want_process: bool, want_realtime: bool) -> None:
        self.o = Observed()
        self.want_process = want_process
        self.want_realtime = want_realtime
        self.pending: dict[Any, tuple[int, list[tuple[int, Any, Any]], str]] = {}
        self.last_ok: dict[Any, int] = {}
        self.rt_buffer: set[int] = set()
        self.rt_pred: dict[int, tuple[int, ...]] = {}
        self.last_index: int | None = None
        self.longest_reader: dict[int, int] = {}  # key -> the read that set its longest version

    # ---------------------------------------------------------------- per operation

    def feed(self, op: Any, where: str) -> None:
        if not isinstance(op, dict):
            raise _bad(where, f"an operation is a JSON object, got {type(op).__name__}")
        index = op.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise _bad(where, f'missing or non-integer "index" ({json.dumps(op.get("index"), default=str)})')
        if self.last_index is not None and index <= self.last_index:
            raise _bad(where, f"index {index} is not greater than the previous index {self.last_index}")
        self.last_index = index
        if is_mark(op):
            t = op.get("time")
            self.o.marks.append(
                Mark(index, t if _is_int(t) else None, op.get("process"), op.get("type"), op.get("f"), op.get("value"))
            )
            return
        for name in ("time", "process"):
            if not _is_int(op.get(name)):
                raise _bad(where, f'missing or non-integer "{name}" ({json.dumps(op.get(name), default=str)})')
        typ = op.get("type")
        if typ == "invoke":
            self._invoke(op, where)
        elif typ in OUTCOMES:
            self._complete(op, OUTCOMES[typ], where)
        else:
            raise _bad(where, f'"type" must be invoke, ok, fail or info, got {json.dumps(typ, default=str)}')

    def _invoke(self, op: dict[str, Any], where: str) -> None:
        o, p = self.o, op["process"]
        if p in self.pending:
            raise _bad(
                where,
                f"process {p} invoked index {op['index']} while its previous invocation "
                f"({self.pending[p][2]}) has not completed",
            )
        mops = _parse_mops(op.get("value"), where)
        t = o.n
        o.outcome.append(INFO)
        o.process.append(p)
        o.inv_index.append(op["index"])
        o.inv_time.append(op["time"])
        o.cmp_index.append(-1)
        o.cmp_time.append(-1)
        o.mop_first.append(0)
        o.mop_count.append(0)
        extra = {k: v for k, v in op.items() if k not in CORE_KEYS}
        if extra:
            o.extras[t] = extra
        self.pending[p] = (t, mops, where)
        if self.want_realtime:
            self.rt_pred[t] = tuple(self.rt_buffer)

    def _complete(self, op: dict[str, Any], outcome: int, where: str) -> None:
        p = op["process"]
        if p not in self.pending:
            raise _bad(
                where, f"{OUTCOME_NAMES[outcome]} completion at index {op['index']} of process {p} has no invocation"
            )
        t, inv, _ = self.pending.pop(p)
        value = op.get("value")
        if value is None and outcome != OK:
            mops = [(READ_UNKNOWN, k, None) if f != APPEND else (f, k, v) for f, k, v in inv]
        else:
            mops = _parse_mops(value, where)
            bad = _same_shape(inv, mops)
            if bad is not None:
                raise _bad(where, f"completion does not match its invocation at micro-op {bad}")
        if outcome == OK:  # Elle reads an ok read of null as the empty list
            mops = [(READ, k, []) if f == READ_UNKNOWN else (f, k, v) for f, k, v in mops]
        o = self.o
        o.outcome[t] = outcome
        o.cmp_index[t] = op["index"]
        o.cmp_time[t] = op["time"]
        extra = {k: v for k, v in op.items() if k not in CORE_KEYS}
        if extra:
            o.extras[t] = {**o.extras.get(t, {}), **extra}
        self._store(t, mops, outcome, where)

    # ---------------------------------------------------------------- per transaction

    def _store(self, t: int, mops: list[tuple[int, Any, Any]], outcome: int, where: str) -> None:
        o = self.o
        o.mop_first[t] = len(o.m_kind)
        o.mop_count[t] = len(mops)
        kids = [o.key_id(k) for _, k, _ in mops]
        last_append: dict[int, int] = {}
        for (f, _, v), kid in zip(mops, kids, strict=True):
            m = len(o.m_kind)
            o.m_kind.append(f)
            o.m_txn.append(t)
            o.m_key.append(kid)
            if f == APPEND:
                self._append(t, kid, v, last_append, where)
            elif f == READ and outcome != FAIL:
                self._read(t, kid, v, m)
            else:  # unknown read, or a failed transaction's read (never evidence)
                o.m_kind[m] = READ_UNKNOWN
                o.m_val.append(0)
                o.m_len.append(0)
                o.m_snap.append(-1)
        if outcome == OK:
            if len(set(kids)) < len(kids):
                self._within_txn(t, mops, kids)
            self._orders(t)
        elif self.want_realtime:
            pred = self.rt_pred.pop(t, ())
            if pred:
                o.rt_nonempty = True
                if outcome == INFO:
                    self._link_rt(pred, t)

    def _append(self, t: int, kid: int, v: int, last_append: dict[int, int], where: str) -> None:
        """Index the writer of (key, value), refusing a second append of it; note intermediate appends."""
        o = self.o
        w = o.writer[kid]
        if v in w:
            raise _bad(
                where,
                f"value {v} appended to key {json.dumps(o.keys[kid])} twice "
                f"(also by the transaction invoked at index {o.inv_index[w[v]]})",
            )
        w[v] = t
        if kid in last_append:
            o.intermediate.setdefault(kid, {})[last_append[kid]] = t
        last_append[kid] = v
        o.m_val.append(v)
        o.m_len.append(0)
        o.m_snap.append(-1)

    def _read(self, t: int, kid: int, v: list[int], m: int) -> None:
        """Keep a read as (last element, length, snapshot); duplicates are checked while the list is here."""
        o = self.o
        o.m_val.append(v[-1] if v else 0)
        o.m_len.append(len(v))
        o.m_snap.append(self._snapshot(kid, v, m))
        if len(set(v)) != len(v):
            counts: dict[int, int] = {}
            for e in v:
                counts[e] = counts.get(e, 0) + 1
            o.duplicates.append((t, m, {e: c for e, c in counts.items() if c > 1}))

    def _snapshot(self, kid: int, v: list[int], m: int) -> int:
        """The id of a stored list `v` is a prefix of; records the first incompatible pair per key."""
        o = self.o
        if not v:
            return -1
        sid = o.main_snap[kid]
        if sid < 0:
            o.snaps.append(list(v))
            o.main_snap[kid] = len(o.snaps) - 1
            self._first_reader(kid, m)
            return o.main_snap[kid]
        main = o.snaps[sid]
        n, have = len(v), len(main)
        if n <= have:
            if main[:n] == v:
                return sid
        elif v[:have] == main:
            main.extend(v[have:])
            self._first_reader(kid, m)
            return sid
        # incompatible with the longest read so far: keep this read as its own snapshot
        o.snaps.append(list(v))
        new = len(o.snaps) - 1
        if kid not in o.incompatible:
            o.incompatible[kid] = (self.longest_reader[kid], m)
        if n > have:
            o.main_snap[kid] = new
            self._first_reader(kid, m)
        return new

    def _first_reader(self, kid: int, m: int) -> None:
        """Remember which read made a key's longest version, to name it in incompatible-order."""
        self.longest_reader[kid] = m

    def _within_txn(self, t: int, mops: list[tuple[int, Any, Any]], kids: list[int]) -> None:
        """internal, future-read and lost-update candidates: the checks needing a whole ok txn."""
        o = self.o
        first = o.mop_first[t]
        state: dict[int, tuple[bool, list[int]]] = {}
        seen: dict[int, dict[int, int]] = {}
        first_read: dict[int, int] = {}
        wrote: set[int] = set()
        internal_done = future_done = False
        for i, ((f, _, v), kid) in enumerate(zip(mops, kids, strict=True)):
            m = first + i
            if f == APPEND:
                if not future_done and v in seen.get(kid, ()):
                    o.future_read.append((t, seen[kid][v], v))
                    future_done = True
                st = state.get(kid)
                state[kid] = (False, [v]) if st is None else (st[0], st[1] + [v])
                if kid not in wrote and kid in first_read:
                    r = first_read[kid]
                    o.lost_update.setdefault((kid, o.m_len[r], o.m_val[r]), []).append((t, r))
                    wrote.add(kid)
                continue
            st = state.get(kid)
            if st is not None and not internal_done:
                known, s = st
                bad = s != v if known else (len(v) < len(s) or v[len(v) - len(s) :] != s)
                if bad:
                    o.internal.append((t, m, list(s) if known else ["...", *s]))
                    internal_done = True
            state[kid] = (True, list(v))
            first_read.setdefault(kid, m)
            ks = seen.setdefault(kid, {})
            for e in v:
                ks.setdefault(e, m)

    def _orders(self, t: int) -> None:
        """Process order (consecutive ok txns of one process) and the reduced realtime order."""
        o = self.o
        p = o.process[t]
        if self.want_process:
            prev = self.last_ok.get(p)
            if prev is not None:
                o.process_src.append(prev)
                o.process_dst.append(t)
            self.last_ok[p] = t
        if self.want_realtime:
            pred = self.rt_pred.pop(t, ())
            if pred:
                o.rt_nonempty = True
                self._link_rt(pred, t)
                self.rt_buffer.difference_update(pred)
            self.rt_buffer.add(t)

    def _link_rt(self, pred: tuple[int, ...], t: int) -> None:
        src, dst = self.o.rt_src, self.o.rt_dst
        for a in pred:
            src.append(a)
            dst.append(t)

    def finish(self) -> Observed:
        """Invocations that never completed become info: their appends may have taken effect."""
        o = self.o
        for t, mops, where in sorted(self.pending.values(), key=lambda x: x[0]):
            o.dangling += 1
            self._store(t, [(READ_UNKNOWN, k, None) if f != APPEND else (f, k, v) for f, k, v in mops], INFO, where)
        self.pending.clear()
        return o


def load(ops: Iterable[Any], *, want_process: bool = True, want_realtime: bool = True) -> Observed:
    """Validate and index a history; raises HistoryError (one line, "op #N: ...") on bad input."""
    return load_labelled(
        ((op, f"op #{i}") for i, op in enumerate(ops)), want_process=want_process, want_realtime=want_realtime
    )


def load_labelled(
    pairs: Iterable[tuple[Any, str]], *, want_process: bool = True, want_realtime: bool = True
) -> Observed:
    """`load` over (operation, where) pairs, so errors can say "line N" for files."""
    loader = _Loader(want_process, want_realtime)
    for op, where in pairs:
        loader.feed(op, where)
    return loader.finish()


def iter_jsonl(path: str | Path) -> Iterator[tuple[Any, str]]:
    """(operation, "line N") for each non-blank line; HistoryError on unreadable files or bad JSON."""
    n = 0
    try:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    yield _json_line(line, n), f"line {n}"
    except OSError as e:
        raise HistoryError(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise HistoryError(f"cannot read {path}: line {n + 1} is not UTF-8 ({e.reason})") from None


def _json_line(line: str, n: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise HistoryError(f"line {n}: bad JSON ({e.msg} at column {e.colno})") from None
