"""The operation history of a chaos run (Jepsen's `history`).

Probes append one `Op` per invoked statement and the nemesis appends `Mark`s; checkers
and plots read it afterwards. Appends come from many probe threads, so the container
is lock-protected and append-only: nothing is ever rewritten, which keeps the evidence honest.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

#: ok = acknowledged; fail = definitely not applied (e.g. connection refused);
#: info = unknown (timeout / connection lost after the statement was sent).
Outcome = Literal["ok", "fail", "info"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)


@dataclass(frozen=True)
class Op:
    """One completed client operation; `start`/`end` are monotonic, `wall`/`commit_ts` epoch."""

    probe: str
    kind: str
    value: int | None
    start: float
    end: float
    wall: float
    outcome: Outcome
    error: str | None = None
    server: str | None = None
    node: str | None = None
    timeline: int | None = None
    commit_ts: float | None = None

    def __post_init__(self) -> None:
        # A typo'd outcome would silently fall out of every checker, so reject it early.
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")

    @property
    def wall_end(self) -> float:
        """Epoch time at completion: the best client-side stand-in for a missing `commit_ts`."""
        return self.wall + (self.end - self.start)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Mark:
    """A fault-injection / heal / leader-change instant, stamped on both clocks."""

    wall: float
    mono: float
    action: str
    target: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


OP_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Op))
_INT_FIELDS = frozenset({"value", "timeline"})
_FLOAT_FIELDS = frozenset({"start", "end", "wall", "commit_ts"})


class History:
    """Thread-safe, append-only record of ops and marks; readers always get snapshots."""

    def __init__(self, ops: Iterable[Op] = (), marks: Iterable[Mark] = ()) -> None:
        self._lock = threading.Lock()
        self._ops: list[Op] = list(ops)
        self._marks: list[Mark] = list(marks)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ops)

    def add(self, op: Op) -> None:
        with self._lock:
            self._ops.append(op)

    def mark(self, action: str, target: str, detail: str = "") -> Mark:
        """Record that something happened *now* (both clocks), e.g. `mark("inject", "patroni-1", "SIGSTOP")`."""
        m = Mark(wall=time.time(), mono=time.monotonic(), action=action, target=target, detail=detail)
        self.add_mark(m)
        return m

    def add_mark(self, mark: Mark) -> None:
        """Append a pre-stamped mark (replaying a saved history, or hand-made test histories)."""
        with self._lock:
            self._marks.append(mark)

    def ops(self, probe: str | None = None, kind: str | None = None, outcome: str | None = None) -> list[Op]:
        """Ops in append order, optionally filtered; `None` means "any"."""
        with self._lock:
            snapshot = list(self._ops)
        return [
            o
            for o in snapshot
            if (probe is None or o.probe == probe)
            and (kind is None or o.kind == kind)
            and (outcome is None or o.outcome == outcome)
        ]

    def marks(self) -> list[Mark]:
        with self._lock:
            return list(self._marks)

    def probes(self) -> list[str]:
        """Sorted, so plot lanes and report tables are stable across runs."""
        return sorted({o.probe for o in self.ops()})

    def values(self, kind: str = "write", outcome: str | None = None) -> set[int]:
        return {o.value for o in self.ops(kind=kind, outcome=outcome) if o.value is not None}

    def to_csv(self) -> str:
        """One row per op with a header line; floats keep full precision, `None` is an empty cell."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(OP_FIELDS)
        for op in self.ops():
            writer.writerow(["" if getattr(op, f) is None else getattr(op, f) for f in OP_FIELDS])
        return buf.getvalue()

    @classmethod
    def from_csv(cls, text: str) -> History:
        """Inverse of `to_csv` (marks are not part of the CSV)."""
        rows = csv.DictReader(io.StringIO(text))
        return cls(ops=[Op(**{k: _parse_cell(k, v) for k, v in row.items()}) for row in rows])

    def to_jsonable(self) -> dict[str, Any]:
        return {
            "probes": self.probes(),
            "ops": [o.to_dict() for o in self.ops()],
            "marks": [m.to_dict() for m in self.marks()],
        }

    @classmethod
    def from_jsonable(cls, data: dict[str, Any]) -> History:
        return cls(ops=[Op(**o) for o in data.get("ops", ())], marks=[Mark(**m) for m in data.get("marks", ())])


def _parse_cell(name: str, cell: str) -> Any:
    if cell == "" and name not in ("probe", "kind", "outcome"):
        return None
    if name in _INT_FIELDS:
        return int(cell)
    if name in _FLOAT_FIELDS:
        return float(cell)
    return cell


@dataclass(frozen=True)
class Request:
    """One request of a load generator's per-request log (chaos.clients.load.locust_run reads it; the
    chaos-under-load checker judges it): a closed-loop application's view, next to the probes' `Op`s."""

    wall: float
    ms: float
    name: str
    ok: bool
    error: str


def until(history: History, end: float) -> History:
    """The operations that ended by `end` (monotonic), with every mark: a window of a run for the checkers."""
    return History([o for o in history.ops() if o.end <= end], history.marks())
