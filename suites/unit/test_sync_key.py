"""Patroni's DCS keys read the way Patroni 4 writes them: /sync (who may be promoted in synchronous mode) and the
members' keys (the role a new leader has published)."""

import json

import pytest

from topology.patroni import LEADER_KEY, MEMBERS_PREFIX, SYNC_KEY, PatroniCluster

pytestmark = pytest.mark.unit


class FakeGateway:
    def __init__(self, keys):
        self.keys = keys

    def get(self, key):
        return self.keys.get(key)


def cluster_with(sync, leader="patroni-3"):
    cluster = PatroniCluster.__new__(PatroniCluster)
    cluster.etcd = FakeGateway({LEADER_KEY: leader, SYNC_KEY: None if sync is None else json.dumps(sync)})
    return cluster


@pytest.mark.parametrize(
    "sync, expected",
    [
        ({"leader": "patroni-3", "quorum": 0, "sync_standby": "patroni-1"}, ["patroni-1"]),
        ({"leader": "patroni-3", "quorum": 0, "sync_standby": "patroni-1,patroni-2"}, ["patroni-1", "patroni-2"]),
        # named in synchronous_standby_names, not yet recorded: nobody may take over yet
        ({"leader": "patroni-3", "quorum": 0, "sync_standby": None}, []),
        # written by an earlier leader: it does not describe the current one
        ({"leader": "patroni-1", "quorum": 0, "sync_standby": "patroni-3"}, []),
        (None, []),
    ],
)
def test_sync_standbys_recorded_for_the_current_leader(sync, expected):
    assert cluster_with(sync).sync_standbys_in_dcs() == expected


def test_garbage_in_the_sync_key_is_no_standby():
    cluster = cluster_with(None)
    cluster.etcd.keys[SYNC_KEY] = "{not json"
    assert cluster.sync_standbys_in_dcs() == []


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('{"conn_url":"postgres://patroni-1:5432/postgres","state":"running","role":"promoted"}', "promoted"),
        ('{"state":"running","role":"primary","xlog_location":41031456}', "primary"),
        (None, None),  # no key: the member is gone (its lease expired)
        ("[1, 2]", None),
        ("{not json", None),
    ],
)
def test_role_in_dcs_reads_the_member_key(raw, expected):
    cluster = cluster_with(None)
    cluster.etcd.keys[MEMBERS_PREFIX + "patroni-1"] = raw
    assert cluster.role_in_dcs("patroni-1") == expected
