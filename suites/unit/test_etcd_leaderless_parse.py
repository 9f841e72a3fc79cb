"""chaos.experiments.etcd_leaderless: etcd 3.5 JSON log lines -> events, and the leaderless period they show."""

from __future__ import annotations

import json

import pytest

from chaos.experiments.etcd_leaderless import parse_line, parse_log, summarise

pytestmark = pytest.mark.unit


def raft(ts: str, msg: str) -> str:
    return json.dumps({"level": "info", "ts": f"2026-12-03T05:49:{ts}Z", "logger": "raft", "msg": msg})


T_CUT = parse_line("x", raft("20.000000", "a became follower at term 2")).ts  # type: ignore[union-attr]


def test_raft_lines_become_events_with_term_and_peer():
    e = parse_line("etcd-2", raft("21.8", "cd [logterm: 2, index: 8] sent MsgPreVote request to ab at term 2"))
    assert (e.kind, e.term, e.peer, e.member) == ("prevote_sent", 2, "ab", "etcd-2")
    e = parse_line("etcd-3", raft("21.8", "ef [logterm: 2, index: 8, vote: 0] cast MsgPreVote for cd [logterm: 2, "
                                  "index: 8] at term 2"))  # fmt: skip
    assert (e.kind, e.peer, e.term) == ("prevote_granted", "cd", 2)
    e = parse_line("etcd-2", raft("21.9", "cd received MsgPreVoteResp from ef at term 2"))
    assert (e.kind, e.peer) == ("prevote_resp", "ef")
    e = parse_line("etcd-2", raft("21.9", "cd received MsgPreVoteResp rejection from ef at term 2"))
    assert e.kind == "prevote_resp"
    e = parse_line("etcd-1", raft("22.0", "raft.node: ef elected leader cd at term 3"))
    assert (e.kind, e.peer, e.term) == ("elected_leader", "cd", 3)
    e = parse_line("etcd-3", raft("21.0", "ef [logterm: 2, index: 9, vote: 0] ignored MsgPreVote from cd [logterm: 2,"
                                  " index: 9] at term 2: lease is not expired (remaining ticks: 3)"))  # fmt: skip
    assert (e.kind, e.peer) == ("lease_not_expired", "cd")


def test_rafthttp_lines_and_docker_prefix():
    line = "2026-12-03T05:49:23.000000001Z " + json.dumps(
        {"level": "warn", "ts": "2026-12-03T05:49:23.1Z", "msg": "peer became inactive (message send to peer failed)",
         "peer-id": "ab", "error": "failed to write ab on stream Message (write tcp: i/o timeout)"})  # fmt: skip
    e = parse_line("etcd-2", line)
    assert (e.kind, e.peer) == ("peer_inactive", "ab")
    assert "i/o timeout" in e.msg
    assert parse_line("etcd-2", '{"level":"info","ts":"2026-12-03T05:49:23Z","msg":"serving client traffic"}') is None
    assert parse_line("etcd-2", "not json") is None
    assert parse_line("etcd-2", '{"msg": "x became leader at term 3"}') is None  # no timestamp: not an event


def test_summary_measures_cut_to_election_and_counts_what_came_between():
    etcd2 = "\n".join(
        [
            raft("19.000000", "cd became follower at term 2"),  # before the cut: not counted
            raft("21.200000", "raft.node: cd lost leader ab at term 2"),
            raft("21.200100", "cd became pre-candidate at term 2"),
            raft("21.200200", "cd [logterm: 2, index: 8] sent MsgPreVote request to ef at term 2"),
            raft("33.500000", "cd became pre-candidate at term 2"),
            raft("33.500200", "cd received MsgPreVoteResp from ef at term 2"),
            raft("33.501000", "cd became leader at term 3"),
            raft("33.501100", "raft.node: cd elected leader cd at term 3"),
            raft("40.000000", "cd became pre-candidate at term 3"),  # after the election: not counted
        ]
    )
    etcd3 = raft(
        "21.300000", "ef [logterm: 2, index: 8, vote: 0] cast MsgPreVote for cd [logterm: 2, index: 8] at term 2"
    )
    events = parse_log("etcd-2", etcd2) + parse_log("etcd-3", etcd3)
    s = summarise(events, cut_wall=T_CUT, cut_term=2, healthy=["etcd-2", "etcd-3"])
    assert s.leaderless_s == pytest.approx(13.5011, abs=1e-3)
    assert (s.new_leader, s.new_term) == ("cd", 3)
    assert s.counts["etcd-2"]["became_pre_candidate"] == 2
    assert s.counts["etcd-3"] == {"prevote_granted": 1}
    assert s.first["prevote_granted"] == pytest.approx(1.3, abs=1e-3)


def test_no_election_seen_is_none_not_zero():
    events = parse_log("etcd-2", raft("21.2", "cd became pre-candidate at term 2"))
    s = summarise(events, cut_wall=T_CUT, cut_term=2, healthy=["etcd-2", "etcd-3"])
    assert s.leaderless_s is None and s.new_leader is None
    # an "elected leader" at the old term (a member re-learning the cut leader) is not a new leader
    events = parse_log("etcd-2", raft("21.2", "raft.node: cd elected leader ab at term 2"))
    assert summarise(events, cut_wall=T_CUT, cut_term=2, healthy=["etcd-2"]).leaderless_s is None
