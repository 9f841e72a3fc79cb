"""The consensus layer under Patroni: what etcd member loss, partitions and quorum loss do to the database.

Named partition shapes, each held longer than Patroni's ttl so the leader must renew its lease (or fail to)
several times while etcd is broken:
- one member stopped / isolated, a minority-majority split, the member the Patroni leader talks to isolated,
  the raft leader killed: Patroni must not notice (no leader change, writes within the 1 s bound);
- quorum lost (two members stopped, or Patroni left with only a minority member): with failsafe_mode off the
  primary demotes before its lease could expire, replicas keep serving reads, never two primaries; with
  failsafe_mode on the primary keeps serving; recovery when quorum returns;
- the Patroni leader cut from all of etcd: it demotes, a replica takes over, no split brain.
"""

from __future__ import annotations

import contextlib

import allure
import pytest

from chaos.checkers.slo import bound, limit, retry_timeout_seconds
from chaos.faults import Isolated, Killed, Partitioned, Stopped
from suites.failover.conftest import assert_failover_ok, async_loss_bound, data_safety_problems
from topology.alerts import expect_alerts, wait_firing
from topology.names import ETCD_MEMBERS, PATRONI_NODES, container

#: experiments hold the run's Patroni settings (the opt-in member probe) as a DynamicConfigChanged fault
pytestmark = [
    pytest.mark.faults("DynamicConfigChanged@patroni-api"),
    pytest.mark.destructive,
    allure.parent_suite("etcd"),
    allure.suite("DCS faults"),
]


class LeaderDemoted(AssertionError):
    """The Patroni leader stopped acting as primary although only one etcd member was lost."""


class EtcdLeaderless(LeaderDemoted):
    """A demotion while etcd itself had no raft leader for longer than Patroni's retry_timeout: the two members
    left could not elect one, so no DCS call could succeed; what Patroni did next was forced by etcd."""


def assert_writes_undisturbed(result) -> None:
    """No Patroni leader change, no demotion, every entry point within its bound, nothing lost, no split brain."""
    assert result.leaders_seen == [result.leader_before], f"the Patroni leader key changed: {result.leaders_seen}"
    if result.no_primary_after_s is not None:
        assert_history_clean(result)
        demoted = (
            f"the leader demoted itself {result.no_primary_after_s:.1f} s into the fault "
            f"(write gaps {result.summary()['gaps_ms']})"
        )
        if result.raft_leaderless_s is not None and result.raft_leaderless_s > retry_timeout_seconds():
            raise EtcdLeaderless(
                f"{demoted}; etcd had no raft leader for {result.raft_leaderless_s:.1f} s "
                f"(> retry_timeout {retry_timeout_seconds()} s); slow WAL fdatasync per member: "
                f"{result.slow_fdatasync_s or 'none logged'}"
            )
        raise LeaderDemoted(demoted)
    assert result.max_primaries == 1, f"{result.max_primaries} primaries at once: {result.max_primaries_nodes}"
    assert_history_clean(result)
    assert_gaps_within_slo(result)


def assert_gaps_within_slo(result, *, during_outage: bool = False) -> None:
    problems = []
    for ep, gap in (result.gaps_during if during_outage else result.gaps).items():
        slo = bound(result.fault, ep)
        if gap.longest_gap_ms is None or gap.longest_gap_ms > slo.bound_ms:
            problems.append(f"{ep}: write gap {gap.longest_gap_ms} ms > {slo.bound_ms:.0f} ms ({slo.source})")
        if result.writes_ok_during[ep] == 0:
            problems.append(f"{ep}: no acknowledged write during the {result.outage_s:.0f} s outage")
    assert not problems, "; ".join(problems)


def assert_history_clean(result) -> None:
    problems = data_safety_problems(result.set_verdict, result.split_brain)
    assert not problems, f"{result.fault}: " + " | ".join(problems)


def a_bystander(etcd, cluster) -> str:
    """An etcd member that is neither the raft leader nor the one the Patroni leader is connected to."""
    busy = {etcd.leader(), etcd.client_member_of(cluster.leader())}
    return next(m for m in reversed(ETCD_MEMBERS) if m not in busy)


def all_others(member: str) -> list[str]:
    """Every container an etcd member talks to: the other members and every Patroni node."""
    return [container(m) for m in ETCD_MEMBERS if m != member] + [container(n) for n in PATRONI_NODES]


@pytest.mark.faults("Stopped@etcd-member", "Isolated@etcd-member")
@allure.title("one etcd member {shape} (a follower Patroni does not use): Patroni does not notice, writes go on")
@pytest.mark.parametrize("shape", ["stopped", "isolated"])
def test_one_member_lost(dcs_outage, etcd, cluster, shape):
    victim = a_bystander(etcd, cluster)
    fault = {
        "stopped": lambda: Stopped(container(victim)),
        "isolated": lambda: Isolated(container(victim), from_=all_others(victim)),
    }[shape]
    result = dcs_outage(f"etcd_member_{shape}").run(lambda leader, h: fault())
    assert victim not in result.etcd_during["healthy"], f"{victim} still healthy: the fault did not bite"
    assert len(result.etcd_during["healthy"]) == 2, result.etcd_during
    assert_writes_undisturbed(result)


@pytest.mark.faults("Partitioned@etcd-quorum")
@allure.title("minority/majority split with the Patroni leader's etcd member on the minority side")
def test_minority_majority_split(dcs_outage, etcd, cluster):
    minority = etcd.client_member_of(cluster.leader())
    assert minority, "cannot tell which etcd member the Patroni leader talks to"
    majority = [m for m in ETCD_MEMBERS if m != minority]
    result = dcs_outage("etcd_minority_split").run(
        lambda leader, h: Partitioned([[container(minority)], [container(m) for m in majority]], history=h)
    )
    assert minority not in result.etcd_during["healthy"], result.etcd_during
    assert_writes_undisturbed(result)


@pytest.mark.faults("Isolated@etcd-leader-client")
@allure.title("the etcd member the Patroni leader talks to is isolated: Patroni switches member, keeps its lease")
@pytest.mark.xfail(
    raises=EtcdLeaderless,
    strict=False,
    reason=(
        "etcd stays leaderless after its raft leader is cut only while one of the two members left has its raft "
        "loop blocked in a WAL write (a slow fdatasync): its ticks stop, so it keeps answering 'lease is not "
        "expired' or holds the vote it granted (issue 21: python -m reports etcd-leaderless --stall-follower 8, "
        "40/40 long; with a healthy disk nothing over 3.5 s in 120 cuts). Seen once in CI on "
        "2026-12-01 15:12 (21.4 s; 'etcd-3 granted etcd-2's pre-vote, etcd-2 never logged the answer'), the "
        "Patroni leader demoted after 4.6 s: a 17.1 s write outage. Only a demotion while the members that kept "
        "the quorum had no raft leader for longer than retry_timeout is the known outcome (the message names each "
        "member's slow fdatasync); a demotion with a working etcd, a changed leader, lost writes or split brain "
        "still fail."
    ),
)
def test_leader_client_member_isolated(dcs_outage, etcd, cluster):
    member = etcd.client_member_of(cluster.leader())
    assert member, "cannot tell which etcd member the Patroni leader talks to"
    result = dcs_outage("etcd_client_member_isolated").run(
        lambda leader, h: Isolated(container(member), from_=all_others(member), history=h)
    )
    assert_writes_undisturbed(result)
    now = etcd.client_member_of(result.leader_before)
    allure.dynamic.description(f"Patroni leader talked to {member}; after the heal it talks to {now}")


@pytest.mark.faults("Stopped@etcd-leader-client")
@allure.title("the etcd member the Patroni leader talks to is stopped (docker stop): Patroni keeps its lease")
@pytest.mark.xfail(
    raises=LeaderDemoted,
    strict=False,
    reason=(
        "seen in CI on 2026-11-25: a graceful stop of the etcd member the leader is connected to answers the "
        "in-flight lease keepalive with gRPC code 14 ('error reading from server: EOF'); Patroni 4.0.7's etcd3 "
        "client raises it as an unknown error instead of retrying another member, logs 'failed to update leader "
        "lock', demotes immediately (immediate-nolock) and re-promotes ~3 s later on a new timeline: a 3.8 s write "
        "outage. Isolation (no EOF) and kill (connection reset) of the same member are retried and invisible. "
        "Only this demotion is the known outcome; a changed leader, lost writes or split brain still fail."
    ),
)
def test_leader_client_member_stopped(dcs_outage, etcd, cluster):
    member = etcd.client_member_of(cluster.leader())
    assert member, "cannot tell which etcd member the Patroni leader talks to"
    result = dcs_outage("etcd_client_member_stopped").run(lambda leader, h: Stopped(container(member), history=h))
    assert member not in result.etcd_during["healthy"], result.etcd_during
    assert_writes_undisturbed(result)


@pytest.mark.faults("Killed@etcd-raft-leader")
@allure.title("the etcd raft leader killed: a new raft leader, Patroni unaffected")
@pytest.mark.xfail(
    raises=LeaderDemoted,
    strict=False,
    reason=(
        "seen in 2 of 4 CI runs on 2026-11-26: while etcd elects a new raft leader its "
        "members answer nothing, so Patroni 4.0.7's etcd3 client spends its retry_timeout (3 s) on a 1 s read "
        "timeout at a live follower, then a 1 s connect timeout at the dead leader, and the Patroni leader, unable "
        "to update its lock in time, demotes and re-promotes itself on a new timeline: a 3.5 s write outage. Only "
        "this demotion is the known outcome; a changed leader, lost writes or split brain still fail."
    ),
)
def test_raft_leader_killed(dcs_outage, etcd):
    raft_leader = etcd.leader()
    assert raft_leader, "no etcd raft leader before the fault"
    result = dcs_outage("etcd_leader_killed").run(lambda leader, h: Killed(container(raft_leader), history=h))
    new = result.etcd_during["leader"]
    assert new and new != raft_leader, f"no new etcd raft leader while {raft_leader} was dead: {result.etcd_during}"
    assert_writes_undisturbed(result)


#: quorum-loss shapes: the etcd members Patroni can still reach, none of which may be part of a quorum
PATRONI_REACHES = {"two_members_stopped": ETCD_MEMBERS[:1], "patroni_with_minority": ETCD_MEMBERS[:1]}


@contextlib.contextmanager
def quorum_lost(shape: str, history):
    if shape == "two_members_stopped":  # the survivor alone cannot serve anything
        with contextlib.ExitStack() as stack:
            for m in ETCD_MEMBERS[1:]:
                stack.enter_context(Stopped(container(m), history=history))
            yield
    else:  # Patroni and one member on one side, the etcd majority on the other
        minority = [container(n) for n in PATRONI_NODES] + [container(m) for m in PATRONI_REACHES[shape]]
        with Partitioned([minority, [container(m) for m in ETCD_MEMBERS[1:]]], history=history):
            yield


#: the alerts each quorum-loss shape must raise (and clear after heal), as Prometheus sees etcd
QUORUM_ALERTS = {
    "two_members_stopped": [("EtcdNoQuorum", None), ("EtcdMemberDown", {"instance": f"{ETCD_MEMBERS[1]}:2379"})],
    "patroni_with_minority": [("EtcdNoLeader", {"instance": f"{ETCD_MEMBERS[0]}:2379"})],
}


@pytest.mark.faults(
    "Stopped@etcd-quorum", "Partitioned@etcd-quorum", "Partitioned@patroni-member", "DynamicConfigChanged@patroni-api"
)
@allure.title("quorum lost ({shape}, {failsafe_mode}): no two primaries, alerts fire, recovery when quorum returns")
@pytest.mark.parametrize("shape", ["two_members_stopped", "patroni_with_minority"])
def test_quorum_loss(dcs_outage, failsafe_mode, shape, monitoring_stack):
    fault = "quorum_loss_failsafe" if failsafe_mode else "quorum_loss"
    with expect_alerts(*QUORUM_ALERTS[shape], scenario=f"{fault}:{shape}") as watches:
        result = dcs_outage(fault).run(lambda leader, h: quorum_lost(shape, h), during=lambda: wait_firing(*watches))
    _check_quorum_loss(result, failsafe_mode, shape)


def _check_quorum_loss(result, failsafe_mode: bool, shape: str) -> None:
    reachable_quorum = set(result.etcd_during["healthy"]) & set(PATRONI_REACHES[shape])
    assert not reachable_quorum, f"Patroni could still reach a quorum member: {result.etcd_during}"
    assert result.max_primaries <= 1, f"{result.max_primaries} primaries at once: {result.max_primaries_nodes}"
    if failsafe_mode:
        # every Patroni member can see the others, so the primary may go on without etcd
        assert result.no_primary_after_s is None, (
            f"the primary stopped serving {result.no_primary_after_s:.1f} s into the outage despite failsafe_mode"
        )
        assert result.leaders_seen[-1] == result.leader_before, result.leaders_seen
        assert_gaps_within_slo(result, during_outage=True)
        recovery = limit("failsafe_recovery")
        slow = {ep: g.longest_gap_ms for ep, g in result.gaps.items() if g.longest_gap_ms > recovery.bound_ms}
        assert not slow, f"write gaps when quorum returned above {recovery.bound_ms:.0f} ms ({recovery.source}): {slow}"
    else:
        demote = limit("quorum_loss_demote")
        assert result.no_primary_after_s is not None, "the primary kept running without etcd quorum"
        assert result.no_primary_after_s * 1000 <= demote.bound_ms, (
            f"primary demoted {result.no_primary_after_s:.1f} s after quorum loss: later than its lease "
            f"({demote.bound_ms / 1000:.0f} s, {demote.source})"
        )
        assert result.reads_during["ok"] > 0, f"replicas served no reads during the outage: {result.reads_during}"
        resume = limit("quorum_loss_resume")
        assert result.writes_resumed_after_heal_s is not None, "writes did not resume after quorum returned"
        assert result.writes_resumed_after_heal_s * 1000 <= resume.bound_ms, (
            f"writes resumed {result.writes_resumed_after_heal_s:.1f} s after heal > {resume.bound_ms / 1000:.0f} s "
            f"({resume.source})"
        )
    assert_history_clean(result)


@pytest.mark.faults("Isolated@patroni-leader")
@pytest.mark.lease_bound
@allure.title("the Patroni leader cut from all of etcd demotes; a replica takes over; no split brain")
def test_leader_cut_from_etcd(experiment):
    result = experiment("leader_cut_from_etcd", pin_leader=True).run(
        lambda leader, h: Isolated(container(leader), from_=[container(m) for m in ETCD_MEMBERS], history=h)
    )
    assert result.new_leader != result.old_leader
    # the cut leader demotes within retry_timeout; with asynchronous replication its last writes may not
    # have reached the new leader: bounded by maximum_lag_on_failover, as in the isolation scenario
    assert_failover_ok(result, allow_loss=async_loss_bound())
