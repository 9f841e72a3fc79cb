"""chaos.experiments.dcs_outage.raft_leaderless_s: how long etcd had no raft leader, read from the members' own log
lines."""

from __future__ import annotations

import pytest

from chaos.checkers.phases import parse_docker_log
from chaos.experiments.dcs_outage import raft_leaderless_s, slow_fdatasync_s

pytestmark = pytest.mark.unit


def line(ts: str, msg: str) -> str:
    return f'2026-12-01T15:12:{ts}Z {{"level":"info","ts":"x","logger":"raft","msg":"{msg}"}}\n'


T0 = parse_docker_log("2026-12-01T15:12:01.300000000Z x")[0][0]
END = T0 + 28

# the 2026-12-01 15:12 CI run, shortened: etcd-1 (the raft leader) isolated, the other two elect 21.4 s later
ETCD_2 = (
    line("03.074000000", "raft.node: 25a77e81047f56db lost leader f1518fb61627e724 at term 2")
    + line("04.773000000", "25a77e81047f56db became pre-candidate at term 2")
    + line("22.733000000", "raft.node: 25a77e81047f56db elected leader 25a77e81047f56db at term 3")
)
ETCD_3 = line("02.400000000", "raft.node: 98eaf63491e18d8f lost leader f1518fb61627e724 at term 2") + line(
    "22.733400000", "raft.node: 98eaf63491e18d8f elected leader 25a77e81047f56db at term 3"
)


def test_from_the_injection_to_the_first_election_after_a_lost_leader():
    s = raft_leaderless_s({"etcd-2": ETCD_2, "etcd-3": ETCD_3}, injected_wall=T0, outage_end_wall=END)
    assert s == pytest.approx(22.733 - 1.300, abs=1e-3)  # the followers noticed only at 2.4 s / 3.1 s


def test_no_election_before_the_end_of_the_outage_counts_to_its_end():
    s = raft_leaderless_s(
        {"etcd-3": line("02.400000000", "raft.node: 98 lost leader f1 at term 2")},
        injected_wall=T0,
        outage_end_wall=END,
    )
    assert s == pytest.approx(28, abs=1e-3)


def test_a_follower_lost_without_the_leader_is_no_leaderless_time():
    quiet = line("05.000000000", "prober detected unhealthy status")
    assert raft_leaderless_s({"etcd-3": quiet}, injected_wall=T0, outage_end_wall=END) is None


def test_lines_before_the_injection_are_ignored():
    before = line("00.500000000", "raft.node: 98 lost leader f1 at term 2")
    assert raft_leaderless_s({"etcd-3": before}, injected_wall=T0, outage_end_wall=END) is None


def test_a_cut_off_follower_is_not_a_leaderless_cluster():
    """Issue 21: an isolated follower logs 'lost leader' and is never elected while cut; the two members that kept
    the quorum (and their leader) logged nothing. Counting it read as 28 s leaderless in every follower isolation."""
    cut = line("02.400000000", "raft.node: 98 lost leader f1 at term 2")
    quiet = line("05.000000000", "prober detected unhealthy status")
    logs = {"etcd-3": cut, "etcd-1": quiet, "etcd-2": quiet}
    assert raft_leaderless_s(logs, injected_wall=T0, outage_end_wall=END) == pytest.approx(28, abs=1e-3)  # the bug
    assert raft_leaderless_s(logs, injected_wall=T0, outage_end_wall=END, members=["etcd-1", "etcd-2"]) is None
    # the raft leader cut off: the two members left are the ones whose lines count
    s = raft_leaderless_s(
        {"etcd-1": cut, "etcd-2": ETCD_2, "etcd-3": ETCD_3},
        injected_wall=T0,
        outage_end_wall=END,
        members=["etcd-2", "etcd-3"],
    )
    assert s == pytest.approx(22.733 - 1.300, abs=1e-3)


def test_slow_fdatasync_per_member_within_the_outage():
    """Issue 21: the evidence a next leaderless CI run needs, the longest slow WAL sync each member reported."""
    slow = (
        '2026-12-01T15:12:05.000000000Z {"level":"warn","ts":"x","caller":"wal/wal.go:805","msg":"slow fdatasync",'
        '"took":"1.054228142s","expected-duration":"1s"}\n'
        '2026-12-01T15:12:09.000000000Z {"level":"warn","msg":"slow fdatasync","took":"1500.5ms"}\n'
    )
    before = '2026-12-01T15:11:00.000000000Z {"level":"warn","msg":"slow fdatasync","took":"9s"}\n'
    s = slow_fdatasync_s({"etcd-2": slow + before, "etcd-3": ETCD_3}, start_wall=T0, end_wall=END)
    assert s == {"etcd-2": 1.5}
