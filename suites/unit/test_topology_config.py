"""Pure parts of topology/ and chaos/ that need no Docker: stack resolution, SLOs, timeouts, probe sequence."""

from __future__ import annotations

import threading

import pytest

from chaos.checkers import slo
from chaos.clients.probes import Sequence, describe
from topology import timeouts
from topology.errors import TopologyError
from topology.stacks import resolve

pytestmark = pytest.mark.unit


def test_resolve_adds_dependencies_in_start_order():
    assert [s.name for s in resolve(["monitoring"])] == ["patroni", "traefik", "vector", "redis", "monitoring"]
    assert [s.name for s in resolve(["pgbouncer"])] == ["patroni", "pgbouncer"]


def test_resolve_rejects_unknown_stack_in_one_line():
    with pytest.raises(TopologyError, match="unknown stack nope; known: patroni"):
        resolve(["nope"])


def test_published_port_must_be_a_number(monkeypatch):
    monkeypatch.setenv("DPG_PORT_PGBOUNCER", "sixty")
    with pytest.raises(TopologyError, match="DPG_PORT_PGBOUNCER='sixty' is not a port number"):
        resolve(["pgbouncer"])[1].published_ports()


def test_slo_resolves_ttl_and_env_overrides(monkeypatch):
    monkeypatch.setenv("DPG_TTL", "30")
    assert slo.bound("hard_kill", "haproxy").bound_ms == 30_000 + 4_000
    monkeypatch.setenv("DPG_SLO_SWITCHOVER_HAPROXY", "2500")
    got = slo.bound("switchover", "haproxy")
    assert (got.bound_ms, got.source) == (2500, "env DPG_SLO_SWITCHOVER_HAPROXY")
    assert slo.bound("switchover", "traefik").bound_ms == 3000


def test_slo_unknown_pair_and_bad_value_are_clear(monkeypatch, tmp_path):
    with pytest.raises(TopologyError, match="no SLO for fault 'meteor'"):
        slo.bound("meteor", "haproxy")
    bad = tmp_path / "slo.yaml"
    bad.write_text("faults:\n  switchover:\n    haproxy: soon\n")
    monkeypatch.setenv("DPG_SLO_FILE", str(bad))
    with pytest.raises(TopologyError, match="neither a number of ms nor a sum of ttl, probe, restore and ms"):
        slo.load()


def test_slo_probe_symbol_follows_the_member_probe_timeout(monkeypatch):
    monkeypatch.delenv("DPG_TTL", raising=False)
    monkeypatch.delenv("DPG_MEMBER_PROBE_TIMEOUT_MS", raising=False)
    stock = slo.bound("freeze", "haproxy")
    assert stock.bound_ms == 20_000 + 2_000 + 2_000  # Patroni's own 2 s probe: ttl+4000
    assert "probe=2000 ms" in stock.source and "ttl=20 s" in stock.source
    monkeypatch.setenv("DPG_MEMBER_PROBE_TIMEOUT_MS", "500")
    assert slo.bound("freeze", "haproxy").bound_ms == 22_500  # ttl + 0.5 s etcd tick + 1 s wake + probe + 0.5 s
    assert slo.bound("freeze", "multihost").bound_ms == 24_500
    assert slo.bound("switchover", "haproxy").bound_ms == 3000  # soft faults do not depend on it


@pytest.mark.parametrize("raw, expected", [("ttl", 20_000), ("ttl-500", 19_500), ("probe+ttl+1", 22_001), ("250", 250)])
def test_slo_sums_of_symbols_and_numbers(monkeypatch, raw, expected):
    monkeypatch.delenv("DPG_TTL", raising=False)
    monkeypatch.delenv("DPG_MEMBER_PROBE_TIMEOUT_MS", raising=False)
    assert slo._resolve(raw, "t") == expected


@pytest.mark.parametrize("raw", ["", "ttl++1", "-5", "ttl+", "probe*2", "sometime"])
def test_slo_malformed_sums_are_one_clear_error(raw):
    with pytest.raises(TopologyError, match="neither a number of ms nor a sum"):
        slo._resolve(raw, "t")


@pytest.mark.parametrize("raw", ["abc", "0", "99", "10001", "1.5"])
def test_member_probe_timeout_must_be_whole_ms_in_range(monkeypatch, raw):
    monkeypatch.setenv("DPG_MEMBER_PROBE_TIMEOUT_MS", raw)
    with pytest.raises(TopologyError, match=r"DPG_MEMBER_PROBE_TIMEOUT_MS=.*from 100 to 10000"):
        slo.member_probe_timeout_ms()


def test_timeouts_env_override_and_ci_multiplier(monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("DPG_TIMEOUT_MULTIPLIER", raising=False)
    monkeypatch.setenv("DPG_TIMEOUTS", '{"failover": 10}')
    t = timeouts._load()
    assert t.failover == 20 and t.switchover == timeouts.Timeouts().switchover * 2
    monkeypatch.setenv("DPG_TIMEOUTS", '{"failovr": 10}')
    with pytest.raises(TopologyError, match="unknown timeout"):
        timeouts._load()


def test_sequence_is_unique_across_threads():
    seq, seen, lock = Sequence(), [], threading.Lock()

    def take():
        for _ in range(500):
            v = seq.next()
            with lock:
                seen.append(v)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 2001))


def test_describe_keeps_class_and_first_line():
    assert describe(ValueError("boom\nsecond line")) == "ValueError: boom"


@pytest.mark.parametrize(
    "raw, message",
    [
        ("fast", "DPG_PROBE_RETRY_CAP_MS='fast' is not a number of milliseconds"),
        ("0", "DPG_PROBE_RETRY_CAP_MS must be > 0, got 0.0"),
    ],
)
def test_bad_probe_retry_cap_is_one_clear_error(monkeypatch, raw, message):
    from chaos.clients.probes import retry_cap_from_env

    monkeypatch.setenv("DPG_PROBE_RETRY_CAP_MS", raw)
    with pytest.raises(TopologyError, match=message):
        retry_cap_from_env()


def test_bad_timeout_multiplier_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("DPG_TIMEOUT_MULTIPLIER", "-1")
    with pytest.raises(TopologyError, match=r"DPG_TIMEOUT_MULTIPLIER must be > 0, got -1\.0"):
        timeouts.multiplier()


def test_the_restore_term_follows_the_restore_timeout(monkeypatch):
    from chaos.checkers.slo import _note, _resolve

    monkeypatch.setenv("DPG_RESTORE_TIMEOUT_S", "3")
    monkeypatch.setenv("DPG_TTL", "20")
    monkeypatch.delenv("DPG_MEMBER_PROBE_TIMEOUT_MS", raising=False)
    assert _resolve("ttl+probe+2000+restore", "host_crash_with_repository/haproxy") == 20000 + 2000 + 2000 + 3000
    assert "restore=3 s" in _note("ttl+probe+2000+restore")
