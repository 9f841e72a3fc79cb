"""Checkers: a `History` in, a frozen verdict out (Jepsen's `checker`).

Pure functions with no I/O so they are unit-testable with hand-made histories and can be
re-run offline on a saved history. `valid` is three-valued: True, False, or None when the
history cannot decide (e.g. no final read, no attributable writes).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, NamedTuple

from chaos.history import History, Op


def _jsonable(value: Any) -> Any:
    """Frozensets/sets become sorted lists, nested verdicts become dicts, tuples become lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


class _Verdict:
    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self)


# --------------------------------------------------------------------------- write gap


@dataclass(frozen=True)
class GapReport(_Verdict):
    """Longest write unavailability seen by one probe; times are monotonic seconds, spans in ms."""

    probe: str
    valid: bool | None
    longest_gap_ms: float | None
    gap_start: float | None
    gap_end: float | None
    first_error: float | None
    first_ok_after: float | None
    ok: int
    fail: int
    info: int
    unavailable_ms: float
    tail_errors: int = 0
    after: float | None = None
    slo_ms: float | None = None
    note: str = ""
    # What the client waited on inside the gap: its longest single attempt (the ok write that closed the gap
    # included), that attempt's outcome and error, and the errors of the gap's failed attempts by message. A gap
    # made of fast refusals is the cluster's; one attempt that hung until a timeout is a client's or a router's.
    slowest_attempt_ms: float | None = None
    slowest_attempt: str = ""
    errors: dict[str, int] = field(default_factory=dict)

    def attempts(self) -> dict[str, Any]:
        """The gap's attempt evidence, as a failover row keeps it."""
        return {"slowest_ms": self.slowest_attempt_ms, "slowest": self.slowest_attempt, "errors": self.errors}


#: libpq's preamble of a failed connect, the same on every attempt of a probe: "connect: <why>" says it shorter
_CONNECT_PREAMBLE = re.compile(r'connection failed: connection to server at "[^"]*"(?:, port \d+)? failed: ')


def _attempt(op: Op) -> str:
    """ "outcome: error" of one attempt, the error without libpq's connect preamble and at most 160 characters."""
    if not op.error:
        return op.outcome
    why = _CONNECT_PREAMBLE.sub("connect: ", op.error).replace("FATAL:  ", "")
    return f"{op.outcome}: {why[:160]}"


def write_gap(history: History, probe: str, *, after: float | None = None, slo_ms: float | None = None) -> GapReport:
    """Longest interval between consecutive acknowledged writes of `probe` (by monotonic `end`).

    With `after` (typically the inject mark's `mono`) only writes ending after it are counted,
    but the last ok write at or before `after` is kept as the left bound: otherwise an outage
    that starts exactly at injection would be invisible. `valid` is False when fewer than two
    ok writes exist (nothing measurable), else `longest_gap_ms <= slo_ms` if an SLO is given.
    """
    writes = sorted(history.ops(probe=probe, kind="write"), key=lambda o: o.end)
    window = writes if after is None else [o for o in writes if o.end > after]
    anchor = _last_ok_at_or_before(writes, after)
    oks = ([anchor] if anchor else []) + [o for o in window if o.outcome == "ok"]
    counts = {k: sum(o.outcome == k for o in window) for k in ("ok", "fail", "info")}
    tail = _tail_errors(window)
    if len(oks) < 2:
        return GapReport(
            probe=probe,
            valid=False,
            longest_gap_ms=None,
            gap_start=None,
            gap_end=None,
            first_error=None,
            first_ok_after=None,
            unavailable_ms=0.0,
            tail_errors=tail,
            after=after,
            slo_ms=slo_ms,
            note=f"only {len(oks)} ok write(s): gap not measurable",
            **counts,
        )
    left, right = max(itertools.pairwise(oks), key=lambda p: p[1].end - p[0].end)
    errors = [o for o in window if o.outcome != "ok" and left.end <= o.start < right.end]
    first_error = min((o.start for o in errors), default=None)
    gap_ms = (right.end - left.end) * 1000.0
    slowest = max([*errors, right], key=lambda o: o.end - o.start)
    return GapReport(
        probe=probe,
        valid=True if slo_ms is None else gap_ms <= slo_ms,
        longest_gap_ms=gap_ms,
        gap_start=left.end,
        gap_end=right.end,
        first_error=first_error,
        first_ok_after=right.end if first_error is not None else None,
        unavailable_ms=(right.end - first_error) * 1000.0 if first_error is not None else 0.0,
        tail_errors=tail,
        after=after,
        slo_ms=slo_ms,
        note=f"{tail} non-ok write(s) after the last ok write (not recovered)" if tail else "",
        slowest_attempt_ms=(slowest.end - slowest.start) * 1000.0,
        slowest_attempt=_attempt(slowest),
        errors=dict(Counter(_attempt(o) for o in errors).most_common()),
        **counts,
    )


def _last_ok_at_or_before(writes: Sequence[Op], after: float | None) -> Op | None:
    if after is None:
        return None
    return next((o for o in reversed(writes) if o.outcome == "ok" and o.end <= after), None)


def _tail_errors(writes: Sequence[Op]) -> int:
    """Non-ok writes after the last ok one: an outage still open when the run stopped."""
    n = 0
    for o in reversed(writes):
        if o.outcome == "ok":
            break
        n += 1
    return n


# --------------------------------------------------------------------------- set checker


@dataclass(frozen=True)
class SetVerdict(_Verdict):
    """Jepsen `set` checker: every acknowledged write must survive, nothing may appear twice or from nowhere."""

    valid: bool | None
    attempted: frozenset[int]
    acknowledged: frozenset[int]
    lost: frozenset[int]
    unexpected: frozenset[int]
    recovered: frozenset[int]
    duplicates: frozenset[int]
    indeterminate_missing: frozenset[int]
    failed_but_present: frozenset[int]
    strict: bool = False


def check_set(history: History, final_read: Mapping[int, int] | None, *, strict: bool = False) -> SetVerdict:
    """Compare write outcomes with `final_read` (value -> row count, read after heal).

    info/fail writes that are present are `recovered` (indeterminate, not loss). A *fail*
    write that is present means the client misclassified a definite failure; it is reported
    as `failed_but_present` and only invalidates the run when `strict=True`.
    """
    attempted = frozenset(history.values("write"))
    acked = frozenset(history.values("write", "ok"))
    info = frozenset(history.values("write", "info")) - acked
    failed = frozenset(history.values("write", "fail")) - acked
    if final_read is None:
        empty: frozenset[int] = frozenset()
        return SetVerdict(None, attempted, acked, empty, empty, empty, empty, empty, empty, strict)
    present = frozenset(v for v, n in final_read.items() if n > 0)
    lost = acked - present
    unexpected = present - attempted
    duplicates = frozenset(v for v, n in final_read.items() if n > 1)
    failed_present = (failed - info) & present
    valid = not (lost or unexpected or duplicates or (strict and failed_present))
    return SetVerdict(
        valid=valid,
        attempted=attempted,
        acknowledged=acked,
        lost=lost,
        unexpected=unexpected,
        recovered=(info | failed) & present,
        duplicates=duplicates,
        indeterminate_missing=info - present,
        failed_but_present=failed_present,
        strict=strict,
    )


# --------------------------------------------------------------------------- split brain


@dataclass(frozen=True)
class Anomaly(_Verdict):
    """One finding; `ms` quantifies it (overlap / intrusion / staleness), `servers` names the parties."""

    kind: str
    detail: str
    ops_values: tuple[int, ...]
    servers: tuple[str, ...] = ()
    ms: float | None = None


@dataclass(frozen=True)
class SplitBrainVerdict(_Verdict):
    valid: bool | None
    anomalies: tuple[Anomaly, ...]
    servers_seen: tuple[str, ...]
    timelines_seen: tuple[int, ...]
    checked: int = 0
    unordered: int = 0
    unattributed: int = 0
    tolerance_ms: float = 0.0


class LeaderChange(NamedTuple):
    """First acknowledgement (epoch seconds) by a new writer, as observed by the probes."""

    ts: float
    old: str
    new: str
    timeline: int | None


_Key = tuple[str, int | None]


@dataclass(frozen=True)
class _Ack:
    ts: float  # commit_ts, or client completion epoch when missing
    server: str  # identity: server address, else node name
    label: str  # human name: node if known, else server
    timeline: int | None  # filled in from neighbours of the same server when missing
    own_timeline: int | None
    value: int | None

    @property
    def key(self) -> _Key:
        """A writer epoch: the same server on a newer timeline is a legitimate new leader."""
        return (self.server, self.timeline)

    @property
    def name(self) -> str:
        return self.label if self.timeline is None else f"{self.label}/tl{self.timeline}"


def check_split_brain(history: History, *, tolerance_ms: float = 0.0) -> SplitBrainVerdict:
    """Look for two writers acknowledging at once, from ok writes' server/commit_ts/timeline.

    Kinds: `alternation` (a writer acks again after another had started acking later
    writes), `overlap` (two writers' [first, last] ack windows overlap by > tolerance) and
    `stale-timeline` (an ack on timeline T after a newer timeline's first ack — the frozen
    deposed leader that wakes up and commits). `valid` is None when no ok write is attributable.
    """
    writes = history.ops(kind="write", outcome="ok")
    acks = _acks(writes)
    unordered = sum(o.commit_ts is None for o in writes if o.server or o.node)
    anomalies = _alternations(acks, tolerance_ms) + _overlaps(acks, tolerance_ms) + _stale_timelines(acks, tolerance_ms)
    return SplitBrainVerdict(
        valid=None if not acks else not anomalies,
        anomalies=tuple(anomalies),
        servers_seen=tuple(sorted({a.label for a in acks})),
        timelines_seen=tuple(sorted({a.timeline for a in acks if a.timeline is not None})),
        checked=len(acks),
        unordered=unordered,
        unattributed=len(writes) - len(acks),
        tolerance_ms=tolerance_ms,
    )


def leader_changes(history: History) -> list[LeaderChange]:
    """Writer hand-overs seen in ok writes (ordered by commit_ts), for timelines and reports."""
    runs = _runs(_acks(history.ops(kind="write", outcome="ok")))
    return [LeaderChange(b[0].ts, a[0].label, b[0].label, b[0].timeline) for a, b in itertools.pairwise(runs)]


def _acks(writes: Iterable[Op]) -> list[_Ack]:
    """Attributable ok writes, ordered by server time, with gaps in `timeline` filled per server."""
    attributable = [o for o in writes if o.server or o.node]
    labels: dict[str, str] = {}
    for o in attributable:
        ident = o.server or o.node or ""
        if o.node and ident not in labels:
            labels[ident] = o.node
    by_server: dict[str, list[Op]] = defaultdict(list)
    for o in sorted(attributable, key=_order_key):
        by_server[o.server or o.node or ""].append(o)
    acks = [
        _Ack(_ts(o), ident, labels.get(ident, ident), tl, o.timeline, o.value)
        for ident, ops in by_server.items()
        for o, tl in zip(ops, _filled_timelines(ops), strict=True)
    ]
    return sorted(acks, key=lambda a: (a.ts, a.value if a.value is not None else -1))


def _ts(op: Op) -> float:
    return op.commit_ts if op.commit_ts is not None else op.wall_end


def _order_key(op: Op) -> tuple[float, int]:
    return (_ts(op), op.value if op.value is not None else -1)


def _filled_timelines(ops: Sequence[Op]) -> list[int | None]:
    """Forward- then back-fill missing timelines so one unreported timeline does not fake a new writer."""
    out: list[int | None] = []
    last: int | None = None
    for o in ops:
        last = o.timeline if o.timeline is not None else last
        out.append(last)
    first = next((t for t in out if t is not None), None)
    return [first if t is None else t for t in out]


def _runs(acks: Sequence[_Ack]) -> list[list[_Ack]]:
    return [list(g) for _, g in itertools.groupby(acks, key=lambda a: a.key)]


def _values(acks: Iterable[_Ack]) -> tuple[int, ...]:
    return tuple(sorted({a.value for a in acks if a.value is not None}))


def _alternations(acks: Sequence[_Ack], tolerance_ms: float) -> list[Anomaly]:
    """A writer returning after another writer had started acking (A..B..A), by more than tolerance."""
    runs = _runs(acks)
    worst: dict[tuple[_Key, _Key], float] = {}
    late_acks: dict[tuple[_Key, _Key], list[_Ack]] = defaultdict(list)
    names: dict[_Key, str] = {a.key: a.name for a in acks}
    last_run: dict[_Key, int] = {}
    for i, run in enumerate(runs):
        key = run[0].key
        for between in runs[last_run.get(key, i) + 1 : i]:
            other = between[0]
            late = [a for a in run if (a.ts - other.ts) * 1000.0 > tolerance_ms]
            if late:
                pair = (key, other.key)
                worst[pair] = max(worst.get(pair, 0.0), (late[-1].ts - other.ts) * 1000.0)
                late_acks[pair].extend(late)
        last_run[key] = i
    return [
        Anomaly(
            kind="alternation",
            detail=f"{names[ret]} acknowledged {len(_values(late_acks[(ret, oth)]))} write(s) up to {ms:.0f} ms "
            f"after {names[oth]} had started acknowledging later writes",
            ops_values=_values(late_acks[(ret, oth)]),
            servers=(names[ret], names[oth]),
            ms=ms,
        )
        for (ret, oth), ms in worst.items()
    ]


def _overlaps(acks: Sequence[_Ack], tolerance_ms: float) -> list[Anomaly]:
    """Pairs of writers whose [first, last] acknowledgement windows overlap by more than tolerance."""
    by_key: dict[_Key, list[_Ack]] = defaultdict(list)
    for a in acks:
        by_key[a.key].append(a)
    out = []
    for xs, ys in itertools.combinations(by_key.values(), 2):
        lo, hi = max(xs[0].ts, ys[0].ts), min(xs[-1].ts, ys[-1].ts)
        ms = (hi - lo) * 1000.0
        if ms > tolerance_ms:
            inside = [a for a in xs + ys if lo <= a.ts <= hi]
            out.append(
                Anomaly(
                    kind="overlap",
                    detail=f"{xs[0].name} and {ys[0].name} both acknowledged writes during the same {ms:.0f} ms",
                    ops_values=_values(inside),
                    servers=(xs[0].name, ys[0].name),
                    ms=ms,
                )
            )
    return out


def _stale_timelines(acks: Sequence[_Ack], tolerance_ms: float) -> list[Anomaly]:
    """Acks on timeline T committed after the first ack on some newer timeline T' > T."""
    first: dict[int, _Ack] = {}
    for a in acks:
        if a.own_timeline is not None and a.own_timeline not in first:
            first[a.own_timeline] = a
    out = []
    for a in acks:
        if a.own_timeline is None:
            continue
        newer = [f for t, f in first.items() if t > a.own_timeline]
        if not newer:
            continue
        began = min(newer, key=lambda f: f.ts)
        ms = (a.ts - began.ts) * 1000.0
        if ms > tolerance_ms:
            out.append(
                Anomaly(
                    kind="stale-timeline",
                    detail=f"write {a.value} acknowledged by {a.label} on old timeline {a.own_timeline} "
                    f"{ms:.0f} ms after timeline {began.own_timeline} began on {began.label}",
                    ops_values=_values([a]),
                    servers=(a.label, began.label),
                    ms=ms,
                )
            )
    return out


# --------------------------------------------------------------------------- compose


def compose(*verdicts: Any) -> bool | None:
    """Jepsen's merge-valid: any False wins, then any None (unknown), else True.

    Accepts verdict objects (anything with `.valid`) or plain bool/None.
    """
    values = [getattr(v, "valid", v) for v in verdicts]
    if any(v is False for v in values):
        return False
    if any(v is None for v in values):
        return None
    return True
