"""The DCS-outage experiment: break etcd (a member, the raft leader, or the quorum) for a fixed time while
writers, readers and a primary census run, then heal and verify.

Unlike a failover, the interesting answer is what the cluster does *during* the outage: whether writes go on
(one member lost, or failsafe_mode), or the primary demotes before its lease could expire and the replicas keep
serving reads (quorum lost), and that two nodes never act as primary at once. The outage lasts longer than
Patroni's ttl, so the leader must renew its lease (or fail to) several times while it is broken.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import allure
import docker

from chaos.checkers.census import PrimaryCensus
from chaos.checkers.phases import parse_docker_log
from chaos.checkers.slo import check_reachable, ttl_seconds
from chaos.checkers.writes import GapReport, SetVerdict, SplitBrainVerdict, check_set, check_split_brain, write_gap
from chaos.clients.probes import Workload, final_read
from chaos.experiments.cluster_settings import hold_for_run
from chaos.experiments.evidence import attach_history
from chaos.experiments.failover import LeaderWatcher, container_logs, node_of_ip
from chaos.history import History, until
from topology import endpoints, evidence
from topology.etcd import EtcdCluster
from topology.health import assert_healthy
from topology.names import ETCD_MEMBERS
from topology.patroni import PatroniCluster
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

#: given the Patroni leader and the history for marks, a context manager that breaks etcd and heals it
OutageFactory = Callable[[str, History], AbstractContextManager]

_LOST_LEADER = re.compile(r"raft\.node: \w+ lost leader")
_ELECTED = re.compile(r"raft\.node: \w+ elected leader")


def raft_leaderless_s(
    logs: Mapping[str, str],
    *,
    injected_wall: float,
    outage_end_wall: float,
    members: Collection[str] | None = None,
) -> float | None:
    """How long etcd was without a working raft leader because of the fault, from the members' own logs (etcd
    3.5, `docker logs --timestamps`): from the injection to the first "elected leader" after a member logged
    "lost leader", or to the end of the outage if nobody was elected by then. None: no member lost its leader.

    Counted from the injection, not from "lost leader": a follower logs that only when its election timeout
    runs out and it starts a pre-vote, ~1 s after a killed or cut-off leader stopped answering.

    `members`: only these members' lines count, the ones that kept a quorum (issue 21). A cut-off follower logs
    "lost leader" itself and is never elected while it is cut: counting its lines made every follower isolation
    read as leaderless for the whole outage (28 s in every such CI row of 2026-12-03, with a raft leader the
    whole time)."""
    chosen = logs if members is None else {m: t for m, t in logs.items() if m in members}
    lines = sorted(line for text in chosen.values() for line in parse_docker_log(text))
    lost = next((t for t, msg in lines if injected_wall <= t <= outage_end_wall and _LOST_LEADER.search(msg)), None)
    if lost is None:
        return None
    elected = next((t for t, msg in lines if lost <= t <= outage_end_wall and _ELECTED.search(msg)), None)
    return (elected if elected is not None else outage_end_wall) - injected_wall


_SLOW_SYNC = re.compile(r'"msg":"slow fdatasync","took":"([0-9.]+)(ms|s|µs|us)"')
_DURATION_S = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6}


def slow_fdatasync_s(logs: Mapping[str, str], *, start_wall: float, end_wall: float) -> dict[str, float]:
    """Per member, the longest WAL fdatasync etcd reported as slow (its own "slow fdatasync" line, over 1 s)
    between start and end. Issue 21: a member whose WAL write blocks stops its raft clock and holds the votes it
    grants, so etcd stays leaderless as long as that write lasts."""
    out: dict[str, float] = {}
    for member, text in logs.items():
        for t, msg in parse_docker_log(text):
            m = _SLOW_SYNC.search(msg)
            if m and start_wall <= t <= end_wall:
                took = round(float(m.group(1)) * _DURATION_S[m.group(2)], 3)
                out[member] = max(out.get(member, 0.0), took)
    return out


@dataclass
class DcsOutageResult:
    fault: str
    run_id: str
    outage_s: float
    leader_before: str
    leader_after: str | None
    leaders_seen: list[str | None]  # every value the leader key took, in order
    gaps: dict[str, GapReport]  # whole run: outage and recovery
    gaps_during: dict[str, GapReport]  # only while etcd was broken
    writes_ok_during: dict[str, int]  # acknowledged writes per entry point inside the outage
    first_refusal_s: float | None  # first failed write through HAProxy, from injection
    writes_resumed_after_heal_s: float | None  # heal start -> first ok write through HAProxy (if refused then)
    reads_during: dict[str, int]  # RO reads inside the outage: ok / fail
    max_primaries: int
    max_primaries_nodes: list[str]
    no_primary_after_s: float | None  # census: first moment no node acted as primary
    etcd_during: dict[str, object]
    raft_leaderless_s: float | None  # injection -> raft leader elected again (members' logs)
    set_verdict: SetVerdict
    split_brain: SplitBrainVerdict
    history: History = field(repr=False)
    variant: str = ""  # non-default cluster settings (chaos.experiments.cluster_settings)
    slow_fdatasync_s: dict[str, float] = field(default_factory=dict)  # member -> longest slow WAL sync in the outage

    def summary(self) -> dict:
        return {
            "fault": self.fault,
            "variant": self.variant,
            "run_id": self.run_id,
            "outage_s": self.outage_s,
            "leader_before": self.leader_before,
            "leader_after": self.leader_after,
            "leaders_seen": self.leaders_seen,
            "gaps_ms": {ep: g.longest_gap_ms for ep, g in self.gaps.items()},
            "gaps_during_ms": {ep: g.longest_gap_ms for ep, g in self.gaps_during.items()},
            "writes_ok_during": self.writes_ok_during,
            "first_refusal_s": self.first_refusal_s,
            "writes_resumed_after_heal_s": self.writes_resumed_after_heal_s,
            "reads_during": self.reads_during,
            "max_primaries": self.max_primaries,
            "max_primaries_nodes": self.max_primaries_nodes,
            "no_primary_after_s": self.no_primary_after_s,
            "etcd_during": self.etcd_during,
            "raft_leaderless_s": self.raft_leaderless_s,
            "slow_fdatasync_s": self.slow_fdatasync_s,
            "ttl_s": ttl_seconds(),
            "lost": len(self.set_verdict.lost),
            "unexpected": len(self.set_verdict.unexpected),
            "duplicates": len(self.set_verdict.duplicates),
            "split_brain": [a.to_dict() for a in self.split_brain.anomalies],
            "acknowledged": len(self.set_verdict.acknowledged),
        }


class DcsOutageExperiment:
    def __init__(
        self,
        client: docker.DockerClient,
        fault: str,
        *,
        outage_s: float | None = None,
        entry_points: list[endpoints.Endpoint] | None = None,
        after_heal_s: float = 3.0,
    ):
        self.client, self.fault = client, fault
        self.outage_s = outage_s if outage_s is not None else ttl_seconds() + 8.0
        self.cluster, self.etcd = PatroniCluster(client), EtcdCluster(client)
        self.entry_points = entry_points or endpoints.write_paths()
        self.after_heal_s = after_heal_s
        self.stacks = sorted({"patroni", *(ep.stack for ep in self.entry_points)})
        self.variant = ""  # chaos.experiments.cluster_settings.variant of the cluster the run measured

    def run(self, inject: OutageFactory, *, during: Callable[[], object] | None = None) -> DcsOutageResult:
        """`during` runs inside the outage (e.g. waiting for an alert); the outage lasts outage_s or until it
        returns, whichever is later."""
        with contextlib.ExitStack() as settings:
            with allure.step(f"steady state: {', '.join(self.stacks)} healthy, etcd has 3 healthy members"):
                assert_healthy(self.client, self.stacks)
                wait_for(
                    lambda: self.etcd.healthy_count() == 3, within=TIMEOUTS.cluster_ready, what="3 healthy etcd members"
                )
                self.variant = hold_for_run(settings, self.cluster)  # restored when the run ends
                check_reachable(self.fault, [ep.name for ep in self.entry_points], self.cluster.dynamic_config())
                leader = self.cluster.leader()
                evidence.attach_text("patronictl list (before)", self.cluster.patronictl_list())
            return self._run(inject, during, leader)

    def _run(self, inject: OutageFactory, during: Callable[[], object] | None, leader: str) -> DcsOutageResult:
        budget = self.outage_s + TIMEOUTS.failover + TIMEOUTS.rejoin + 120
        workload = Workload(self.entry_points, reads=[endpoints.haproxy_ro()], node_of=node_of_ip(), max_seconds=budget)
        with (
            workload.running() as history,
            PrimaryCensus(max_seconds=budget) as census,
            LeaderWatcher(self.cluster, history) as watcher,
        ):
            for ep in self.entry_points:
                assert workload.wait_acks(ep.name, 5, within=10), f"{ep.name}: no steady writes before the fault"
            with allure.step(f"inject: {self.fault} for {self.outage_s:.0f} s (ttl {ttl_seconds()} s)"):
                injected_at, injected_wall = time.monotonic(), time.time()
                with inject(leader, history):
                    if during is not None:
                        during()
                    time.sleep(max(0.0, self.outage_s / 2 - (time.monotonic() - injected_at)))
                    etcd_during = self._etcd_snapshot()
                    history.mark("etcd", "snapshot", str(etcd_during))
                    time.sleep(max(0.0, self.outage_s - (time.monotonic() - injected_at)))
                    outage_end, outage_end_wall = time.monotonic(), time.time()
                healed_at = time.monotonic()  # the fault's heal has returned
            with allure.step("heal, then wait for writes everywhere and a healthy cluster"):
                for ep in self.entry_points:
                    if not workload.wait_acks(ep.name, 3, within=TIMEOUTS.failover):
                        history.mark("stuck", ep.name, f"no writes within {TIMEOUTS.failover:.0f}s of heal")
                wait_for(
                    lambda: self.etcd.healthy_count() == 3,
                    within=TIMEOUTS.cluster_ready,
                    what="3 healthy etcd members after heal",
                )
                assert_healthy(self.client, self.stacks, within=TIMEOUTS.rejoin)
                time.sleep(self.after_heal_s)
        healthy = list(etcd_during.get("healthy") or [])  # type: ignore[call-overload]
        etcd_logs = container_logs(
            self.client, list(ETCD_MEMBERS), tail="all", timestamps=True, since=int(injected_wall) - 1
        )
        leaderless = raft_leaderless_s(
            etcd_logs,
            injected_wall=injected_wall,
            outage_end_wall=outage_end_wall,
            # the members that kept a quorum; with none (quorum lost), every member's lines
            members=healthy if len(healthy) * 2 > len(ETCD_MEMBERS) else None,
        )
        slow_syncs = slow_fdatasync_s(etcd_logs, start_wall=injected_wall, end_wall=outage_end_wall)
        return self._verify(
            history,
            workload.run_id,
            leader,
            (injected_at, outage_end, healed_at),
            census,
            watcher,
            etcd_during,
            leaderless,
            slow_syncs,
        )

    def _etcd_snapshot(self) -> dict[str, object]:
        members = self.etcd.members()
        return {
            "healthy": [m.name for m in members if m.healthy],
            "leader": self.etcd.leader(),
            "patroni_leader_key": self.cluster.leader_in_dcs(),
        }

    def _verify(self, history, run_id, leader, times, census, watcher, etcd_during, raft_leaderless, slow_syncs):
        injected_at, outage_end, _healed_at = times
        with allure.step("verify: final read, history checkers, census of primaries"):
            read = final_read(endpoints.haproxy(), run_id)
            during = [o for o in history.ops(kind="write") if injected_at <= o.end <= outage_end]
            ha = sorted(history.ops(probe="haproxy", kind="write"), key=lambda o: o.end)
            refusal = next((o.start for o in ha if o.start >= injected_at and o.outcome != "ok"), None)
            refused_at_heal = any(o.outcome != "ok" for o in ha if outage_end - 1.0 <= o.start <= outage_end)
            resumed = next((o.end for o in ha if o.end >= outage_end and o.outcome == "ok"), None)
            reads = [o for o in history.ops(kind="read") if injected_at <= o.end <= outage_end]
            n, _, nodes = census.max_primaries(start=injected_at)
            no_primary = census.first_time_without_primary(injected_at)
            result = DcsOutageResult(
                fault=self.fault,
                run_id=run_id,
                outage_s=self.outage_s,
                leader_before=leader,
                leader_after=self.cluster.leader(),
                leaders_seen=[who for _, who in watcher.changes],
                gaps={ep.name: write_gap(history, ep.name, after=injected_at) for ep in self.entry_points},
                gaps_during={
                    ep.name: write_gap(until(history, outage_end), ep.name, after=injected_at)
                    for ep in self.entry_points
                },
                writes_ok_during={
                    ep.name: sum(o.probe == ep.name and o.outcome == "ok" for o in during) for ep in self.entry_points
                },
                first_refusal_s=None if refusal is None else refusal - injected_at,
                writes_resumed_after_heal_s=(resumed - outage_end) if (refused_at_heal and resumed) else None,
                reads_during={
                    "ok": sum(o.outcome == "ok" for o in reads),
                    "fail": sum(o.outcome != "ok" for o in reads),
                },
                max_primaries=n,
                max_primaries_nodes=sorted(nodes),
                no_primary_after_s=None if no_primary is None else no_primary - injected_at,
                etcd_during=etcd_during,
                raft_leaderless_s=raft_leaderless,
                slow_fdatasync_s=slow_syncs,
                set_verdict=check_set(history, read),
                split_brain=check_split_brain(history),
                history=history,
                variant=self.variant,
            )
            summary = result.summary()
            evidence.attach_json(
                "verdict",
                summary | {"set": result.set_verdict.to_dict(), "split_brain_verdict": result.split_brain.to_dict()},
            )
            evidence.attach_json("primary census", census.timeline())
            attach_history(self.fault, history)
            evidence.attach_text("patronictl list (after)", self.cluster.patronictl_list())
            evidence.record_measurement("dcs_outage", **summary)
        return result
