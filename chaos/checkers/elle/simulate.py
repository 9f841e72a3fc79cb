"""In-process simulated databases that produce list-append histories with known guarantees.

They exist to prove the checker both ways: a database that is serializable must never be flagged
under serializability, one that is only snapshot-isolated must show G2-item sometimes and never a
G-single, a stale replica must show realtime anomalies only, and seeded defects must be caught.
Also the benchmark's source of large histories (operations are generated lazily, so a million
transactions never sit in memory at once).

A discrete-event loop runs `concurrency` client processes. Each transaction is invoked, takes
effect at one instant (its commit), and completes a little later; a process then thinks and invokes
again. Time is in nanoseconds and drives both the history's `time` and its index order. A process
whose transaction ends `info` (connection lost: outcome unknown) is replaced by a fresh process
number, as Jepsen does.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MS = 1_000_000  # ns


@dataclass
class Workload:
    """Transactions of 1-4 micro-ops over a small pool of hot keys; a key retires after a few dozen
    appends and a fresh one takes its place, so reads stay short while the history grows."""

    rng: random.Random
    key_count: int = 8
    min_len: int = 1
    max_len: int = 4
    read_fraction: float = 0.5
    read_only_fraction: float = 0.0
    max_appends: int = 32
    skew: float = 0.6  # rate of the exponential key choice: higher = fewer, hotter keys
    active: list[int] = field(default_factory=list)
    next_value: dict[int, int] = field(default_factory=dict)
    limit: dict[int, int] = field(default_factory=dict)
    next_key: int = 0

    def __post_init__(self) -> None:
        for _ in range(self.key_count):
            self.active.append(self._fresh())

    def _fresh(self) -> int:
        k = self.next_key
        self.next_key += 1
        self.next_value[k] = 1
        self.limit[k] = self.rng.randint(max(2, self.max_appends // 4), self.max_appends)
        return k

    def txn(self) -> list[list[Any]]:
        rng = self.rng
        read_only = rng.random() < self.read_only_fraction
        mops: list[list[Any]] = []
        for _ in range(rng.randint(self.min_len, self.max_len)):
            i = min(int(rng.expovariate(self.skew)), self.key_count - 1)  # a few keys are hot
            k = self.active[i]
            if read_only or rng.random() < self.read_fraction:
                mops.append(["r", k, None])
                continue
            v = self.next_value[k]
            self.next_value[k] = v + 1
            mops.append(["append", k, v])
            if v >= self.limit[k]:
                self.active[i] = self._fresh()
        return mops


class Store:
    """Committed lists with the commit sequence number of every element (for snapshots by seq)."""

    def __init__(self) -> None:
        self.values: dict[int, list[int]] = {}
        self.seqs: dict[int, list[int]] = {}
        self.seq = 0
        self.commit_times: list[int] = []  # time of commit number i+1
        self.last_write: dict[int, int] = {}

    def read(self, k: int, at_seq: int | None = None) -> list[int]:
        vals = self.values.get(k, [])
        if at_seq is None or at_seq >= self.seq:
            return list(vals)
        return vals[: bisect.bisect_right(self.seqs.get(k, []), at_seq)]

    def commit(self, appends: list[tuple[int, int]], now: int) -> int:
        self.seq += 1
        self.commit_times.append(now)
        for k, v in appends:
            self.values.setdefault(k, []).append(v)
            self.seqs.setdefault(k, []).append(self.seq)
            self.last_write[k] = self.seq
        return self.seq

    def seq_at(self, t: int) -> int:
        """The last commit number at or before time `t`."""
        return bisect.bisect_right(self.commit_times, t)


def _run_mops(mops: list[list[Any]], read: Any) -> tuple[list[list[Any]], list[tuple[int, int]]]:
    """Execute micro-ops with `read(k) -> committed list`, seeing the transaction's own appends."""
    own: dict[int, list[int]] = {}
    out: list[list[Any]] = []
    appends: list[tuple[int, int]] = []
    for f, k, v in mops:
        if f == "append":
            own.setdefault(k, []).append(v)
            appends.append((k, v))
            out.append([f, k, v])
        else:
            out.append([f, k, read(k) + own.get(k, [])])
    return out, appends


class Serializable:
    """Every transaction takes effect atomically at its commit instant, inside its interval: strict
    serializability. With `info_rate`, some clients lose the answer (applied or not, at random)."""

    def __init__(self, rng: random.Random) -> None:
        self.store = Store()
        self.rng = rng

    def begin(self, mops: list[list[Any]], now: int) -> dict[str, Any]:
        return {"mops": mops}

    def commit(self, st: dict[str, Any], now: int) -> None:
        value, appends = _run_mops(st["mops"], self.store.read)
        self.store.commit(appends, now)
        st.update(outcome="ok", value=value)

    def complete(self, st: dict[str, Any], now: int) -> None:
        pass

    def route(self, st: dict[str, Any]) -> dict[str, Any]:
        return {}


class SnapshotIsolation(Serializable):
    """Reads from the snapshot committed when the transaction began; first committer wins on
    write-write conflicts (the loser fails). Strong SI: write skew (G2-item) is possible."""

    def begin(self, mops: list[list[Any]], now: int) -> dict[str, Any]:
        return {"mops": mops, "snap": self.store.seq}

    def commit(self, st: dict[str, Any], now: int) -> None:
        snap = st["snap"]
        keys = {k for f, k, _ in st["mops"] if f == "append"}
        if any(self.store.last_write.get(k, 0) > snap for k in keys):
            st.update(outcome="fail", value=None)
            return
        value, appends = _run_mops(st["mops"], lambda k: self.store.read(k, snap))
        self.store.commit(appends, now)
        st.update(outcome="ok", value=value)


class StaleReplica(Serializable):
    """Writes commit on the primary (serially); read-only transactions read a replica that applies
    the primary's commits `lag_ms` late and stops applying during `pauses` ((start, length) in ms).
    Every read is a committed prefix, so the history is serializable but not strict."""

    def __init__(self, rng: random.Random, lag_ms: float = 0.0, pauses: tuple[tuple[float, float], ...] = ()) -> None:
        super().__init__(rng)
        self.lag = int(lag_ms * MS)
        self.pauses = [(int(a * MS), int((a + d) * MS)) for a, d in pauses]

    def replica_seq(self, now: int) -> int:
        for a, b in self.pauses:
            if a <= now < b:
                return self.store.seq_at(a - self.lag)
        return self.store.seq_at(now - self.lag)

    def commit(self, st: dict[str, Any], now: int) -> None:
        if any(f == "append" for f, _, _ in st["mops"]):
            super().commit(st, now)
            st["node"] = "primary"
            return
        seq = self.replica_seq(now)
        value, _ = _run_mops(st["mops"], lambda k: self.store.read(k, seq))
        st.update(outcome="ok", value=value, node="replica")

    def route(self, st: dict[str, Any]) -> dict[str, Any]:
        return {"node": st["node"]} if "node" in st else {}


class LossyCommit(Serializable):
    """A seeded defect: with probability `p`, a commit becomes visible, then is lost before the client
    hears back (as with a commit visible before it is durable, then lost at failover). An honest client
    reports it failed (G1a); with `lie`, the client reports it ok (incompatible orders)."""

    def __init__(self, rng: random.Random, p: float = 0.1, lie: bool = False) -> None:
        super().__init__(rng)
        self.p = p
        self.lie = lie

    def commit(self, st: dict[str, Any], now: int) -> None:
        super().commit(st, now)
        st["doomed"] = self.rng.random() < self.p

    def complete(self, st: dict[str, Any], now: int) -> None:
        if not st.get("doomed"):
            return
        for f, k, v in st["mops"]:
            if f == "append":
                self.store.values[k].remove(v)
        if not self.lie:
            st.update(outcome="fail", value=None)


def _invocation(mops: list[list[Any]]) -> list[list[Any]]:
    return [[f, k, None] if f == "r" else [f, k, v] for f, k, v in mops]


def run(
    db: Serializable,
    n: int,
    *,
    seed: int = 0,
    concurrency: int = 5,
    info_rate: float = 0.0,
    workload: Workload | None = None,
    commit_ms: tuple[float, float] = (1.0, 20.0),
    reply_ms: tuple[float, float] = (0.5, 5.0),
    think_ms: tuple[float, float] = (0.0, 5.0),
    slow_doomed_ms: float = 30.0,
) -> Iterator[dict[str, Any]]:
    """Operations (invocations and completions, in index order) of `n` transactions against `db`."""
    rng = random.Random(seed)
    wl = workload or Workload(random.Random(seed + 1))
    heap: list[tuple[int, int, str, int]] = []
    process = list(range(concurrency))
    state: list[dict[str, Any]] = [{} for _ in range(concurrency)]
    seq = index = invoked = 0

    def push(t: int, kind: str, slot: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (t, seq, kind, slot))

    def ms(lo_hi: tuple[float, float]) -> int:
        return int(rng.uniform(*lo_hi) * MS)

    for slot in range(concurrency):
        push(ms(think_ms), "invoke", slot)
    while heap:
        now, _, kind, slot = heapq.heappop(heap)
        st = state[slot]
        if kind == "invoke":
            if invoked >= n:
                continue
            invoked += 1
            mops = wl.txn()
            state[slot] = db.begin(mops, now)
            yield {
                "index": index,
                "time": now,
                "process": process[slot],
                "type": "invoke",
                "f": "txn",
                "value": _invocation(mops),
            }
            index += 1
            push(now + ms(commit_ms), "commit", slot)
        elif kind == "commit":
            st["lost"] = rng.random() < info_rate  # the client will not learn the outcome
            if st["lost"] and rng.random() < 0.5:
                st.update(outcome="info", value=None)  # ... and it never took effect
            else:
                db.commit(st, now)
            delay = ms(reply_ms) + (int(slow_doomed_ms * MS) if st.get("doomed") else 0)
            push(now + delay, "complete", slot)
        else:
            db.complete(st, now)
            outcome, value = st["outcome"], st["value"]
            if st["lost"]:
                outcome, value = "info", None
            op = {
                "index": index,
                "time": now,
                "process": process[slot],
                "type": outcome,
                "f": "txn",
                "value": value if value is not None else _invocation(st["mops"]),
                **db.route(st),
            }
            yield op
            index += 1
            if outcome == "info":
                process[slot] += concurrency
            push(now + ms(think_ms), "invoke", slot)


def serializable(n: int, seed: int = 0, **kw: Any) -> Iterator[dict[str, Any]]:
    return run(Serializable(random.Random(seed)), n, seed=seed, **kw)


def snapshot_isolation(n: int, seed: int = 0, **kw: Any) -> Iterator[dict[str, Any]]:
    return run(SnapshotIsolation(random.Random(seed)), n, seed=seed, **kw)


def stale_replica(
    n: int,
    seed: int = 0,
    lag_ms: float = 0.0,
    pauses: tuple[tuple[float, float], ...] = (),
    read_only_fraction: float = 0.4,
    **kw: Any,
) -> Iterator[dict[str, Any]]:
    wl = Workload(random.Random(seed + 1), read_only_fraction=read_only_fraction)
    return run(StaleReplica(random.Random(seed), lag_ms, pauses), n, seed=seed, workload=wl, **kw)


def lossy_commit(n: int, seed: int = 0, p: float = 0.1, lie: bool = False, **kw: Any) -> Iterator[dict[str, Any]]:
    return run(LossyCommit(random.Random(seed), p, lie), n, seed=seed, **kw)


SIMULATORS = {
    "serializable": serializable,
    "snapshot-isolation": snapshot_isolation,
    "stale-replica": stale_replica,
    "lossy-commit": lossy_commit,
}
