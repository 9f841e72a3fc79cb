"""Jepsen's combined nemesis for the list-append runs: a seeded random schedule of faults, one at a time, every few
seconds for a bounded time, each healed when its step ends (and all of them in `finally`).

    steps = schedule(seed=7, seconds=180)
    Nemesis(cluster, history, steps).run(deadline_s=180)

Kinds (each is a `chaos.faults` fault, so it marks the history, heals on exit, and is held to the test's
declaration): `leader_kill` (Killed@patroni-leader; healed once another leader holds the key and says 'primary',
as the failover experiment does: a restart before that hits patroni/patroni#2124), `pause` (Paused@patroni-member,
leader or replica as the seed decides), `partition` (Isolated@patroni-member from its Patroni peers and etcd),
`switchover` (Switchover@patroni-api), `replica_loss` (Killed@patroni-replica, restarted after the hold),
`haproxy_restart` (ServiceRestarted@haproxy). A step whose target does not exist right now (no leader, no replica,
a switchover refused) is marked as skipped, never retried: the schedule stays what the seed says.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import allure

from chaos.faults import Isolated, Killed, Paused, ServiceRestarted, Switchover
from topology.names import ETCD_MEMBERS, PATRONI_NODES, container
from topology.patroni import PatroniCluster
from topology.timeouts import TIMEOUTS
from topology.waiting import WaitTimeout, wait_for

KINDS = ("leader_kill", "pause", "partition", "switchover", "replica_loss", "haproxy_restart")
#: what each kind declares (`@pytest.mark.faults(*DECLARES)` on a mixed-fault test)
DECLARES = (
    "Killed@patroni-leader",
    "Killed@patroni-replica",
    "Paused@patroni-member",
    "Isolated@patroni-member",
    "Switchover@patroni-api",
    "ServiceRestarted@haproxy",
)


@dataclass(frozen=True)
class Step:
    at: float  # seconds after the start
    kind: str
    hold: float  # seconds the fault stays injected (a leader kill: until another leader is primary)
    role: str = "leader"  # pause / partition: which member, decided by the seed

    def describe(self) -> str:
        who = f" ({self.role})" if self.kind in ("pause", "partition") else ""
        return f"t+{self.at:.1f}s {self.kind}{who} for {self.hold:.1f}s"


def schedule(
    seed: int,
    seconds: float,
    *,
    every: tuple[float, float] = (4.0, 10.0),
    hold: tuple[float, float] = (2.0, 6.0),
    kinds: tuple[str, ...] = KINDS,
) -> list[Step]:
    """The steps of a run: a fault every `every` seconds (after the previous one's hold), each held `hold`
    seconds, kinds and roles drawn from `seed`; the same seed gives the same schedule."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown nemesis kinds {sorted(unknown)} (known: {', '.join(KINDS)})")
    rng = random.Random(seed)
    out: list[Step] = []
    t = rng.uniform(*every) / 2
    while t < seconds:
        kind = rng.choice(kinds)
        h = round(rng.uniform(*hold), 1)
        out.append(Step(round(t, 1), kind, h, rng.choice(("leader", "replica"))))
        t += h + rng.uniform(*every)
    return out


def _others(node: str) -> list[str]:
    return [container(n) for n in PATRONI_NODES if n != node] + [container(e) for e in ETCD_MEMBERS]


class Nemesis:
    """Runs a schedule in the calling thread (the test's: fault declarations are held there)."""

    def __init__(self, cluster: PatroniCluster, history: Any, steps: list[Step], *, sleep: Callable = time.sleep,
                 settle: float = TIMEOUTS.failover):  # fmt: skip
        self.cluster, self.history, self.steps, self.sleep, self.settle = cluster, history, steps, sleep, settle
        self.done: list[dict[str, Any]] = []

    def _leader(self) -> str | None:
        try:
            return self.cluster.leader()
        except Exception:
            return None

    def _replica(self) -> str | None:
        try:
            reps = self.cluster.replicas()
        except Exception:
            return None
        return reps[0] if reps else None

    def _new_primary(self, old: str) -> bool:
        try:
            new = self.cluster.leader_in_dcs()
            return new not in (None, old) and self.cluster.role_in_dcs(new) == "primary"
        except Exception:
            return False

    def _member(self, role: str) -> str | None:
        return self._leader() if role == "leader" else self._replica()

    @contextlib.contextmanager
    def _fault(self, step: Step) -> Iterator[str | None]:
        """Inject the step's fault; yields what it targets (None: nothing to target now, nothing injected)."""
        h = self.history
        if step.kind == "leader_kill":
            old = self._leader()
            if old is None:
                yield None
                return
            with Killed(container(old), history=h):
                yield old
                # heal only once another leader holds the key and says 'primary' (patroni/patroni#2124)
                with contextlib.suppress(WaitTimeout):
                    wait_for(lambda: self._new_primary(old), within=TIMEOUTS.failover,
                             what=f"a primary other than {old}", every=0.2)  # fmt: skip
            return
        if step.kind in ("pause", "partition"):
            node = self._member(step.role)
            if node is None:
                yield None
                return
            fault = (Paused(container(node), history=h) if step.kind == "pause"
                     else Isolated(container(node), from_=_others(node), history=h))  # fmt: skip
            with fault:
                yield node
                self.sleep(step.hold)
            return
        if step.kind == "switchover":
            leader = self._leader()
            if leader is None:
                yield None
                return
            with Switchover(history=h, wait=TIMEOUTS.switchover):
                yield leader
            return
        if step.kind == "replica_loss":
            node = self._replica()
            if node is None:
                yield None
                return
            with Killed(container(node), history=h):
                yield node
                self.sleep(step.hold)
            return
        if step.kind == "haproxy_restart":
            with ServiceRestarted(container("haproxy"), timeout=2, history=h):
                yield "haproxy"
            return
        raise ValueError(f"unknown nemesis kind {step.kind!r}")

    def apply(self, step: Step) -> dict[str, Any]:
        started = time.monotonic()
        record: dict[str, Any] = {"step": step.describe(), "kind": step.kind}
        try:
            with self._fault(step) as target:
                record["target"] = target
                if target is None:
                    self.history.mark("nemesis-skip", step.kind, "nothing to target right now")
        except Exception as exc:  # a step that cannot run (refused, raced, a Docker error) must not end the run
            record["error"] = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            self.history.mark("nemesis-error", step.kind, record["error"])
        record["seconds"] = round(time.monotonic() - started, 1)
        if self.settle:  # the next fault hits a cluster with a leader, not one still electing (bounded)
            try:
                wait_for(self._leader, within=self.settle, what="a leader", every=0.5)
            except WaitTimeout:
                self.history.mark("nemesis-note", "cluster", f"no leader {self.settle:.0f}s after {step.kind}")
                record["no_leader_after"] = True
        self.done.append(record)
        return record

    def run(self, deadline_s: float) -> list[dict[str, Any]]:
        """Every step due before `deadline_s`, in order, each at its time (or at once when the previous ran late)."""
        start = time.monotonic()
        for step in self.steps:
            if step.at >= deadline_s:
                break
            wait = start + step.at - time.monotonic()
            if wait > 0:
                self.sleep(wait)
            if time.monotonic() - start >= deadline_s:
                break
            with allure.step(f"nemesis: {step.describe()}"):
                self.apply(step)
        return self.done
