"""The etcd cluster token (one per cluster ever created) and the health gate's view of each Patroni daemon's DCS."""

from __future__ import annotations

from types import SimpleNamespace

from topology import lifecycle
from topology.health import dcs_last_seen_problems


def member(service: str, env: list[str]) -> SimpleNamespace:
    return SimpleNamespace(labels={"com.docker.compose.service": service}, attrs={"Config": {"Env": env}})


def test_an_existing_etcd_keeps_its_token(monkeypatch):
    running = [
        member("haproxy", ["ETCD_INITIAL_CLUSTER_TOKEN=not-etcd"]),
        member("etcd-2", ["ETCD_DATA_DIR=/data/etcd", "ETCD_INITIAL_CLUSTER_TOKEN=dpg-etcd-0a1b2c3d"]),
    ]
    monkeypatch.setattr(lifecycle, "managed_containers", lambda client, stack: running)
    assert lifecycle.etcd_cluster_token(object()) == "dpg-etcd-0a1b2c3d"


def test_an_etcd_created_again_gets_a_new_token(monkeypatch):
    """After a wipe no member exists: the re-created cluster must not get the old ID (docs/findings.md)."""
    monkeypatch.setattr(lifecycle, "managed_containers", lambda client, stack: [member("patroni-1", [])])
    first, second = lifecycle.etcd_cluster_token(object()), lifecycle.etcd_cluster_token(object())
    assert first.startswith("dpg-etcd-") and second.startswith("dpg-etcd-")
    assert first != second


def test_a_daemon_that_stopped_reading_the_dcs_is_a_problem():
    seen = {"patroni-1": 109.0, "patroni-2": 50.0, "patroni-3": None}  # None: a Patroni without the field
    problems = dcs_last_seen_problems(seen, now=110.0, stale_after_s=20.0)
    assert len(problems) == 1
    assert problems[0].startswith("Patroni on patroni-2 has not read etcd for 60 s")


def test_a_daemon_within_ttl_is_not_a_problem():
    assert dcs_last_seen_problems({"patroni-1": 90.0}, now=110.0, stale_after_s=20.0) == []
