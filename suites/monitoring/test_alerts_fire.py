"""During a fault the matching alert fires within its bound, and it resolves after heal (Prometheus API).

Bounds: compose/config/prometheus/alert-bounds.yml (scrape + detect + for + evaluation + margin). Each scenario
runs between two health gates (`health_gate`); the last scenario proves that a broken rule turns these
assertions red.
"""

from __future__ import annotations

import shutil
import time

import allure
import psycopg
import pytest
import yaml

from chaos.faults import Killed, MaintenanceMode, Paused, Reconfigured, Stopped
from chaos.faults.replay import ReplayPaused
from topology import endpoints, prometheus
from topology.alerts import (
    AlertNotFired,
    AlertNotLoaded,
    expect_alert,
    expect_alerts,
    expected_targets,
    target_problems,
)
from topology.health import assert_healthy, query_one
from topology.names import container
from topology.patroni import PatroniCluster
from topology.stacks import COMPOSE_DIR
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

pytestmark = [pytest.mark.destructive, allure.parent_suite("monitoring"), allure.suite("alerts fire during faults")]


def scratch_copy(src, dst):
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    dst.parent.chmod(0o755)
    return dst


@pytest.mark.faults("Stopped@patroni-replica")
@allure.title("Patroni member down: a stopped replica fires PatroniMemberDown, start resolves it")
def test_patroni_member_down(health_gate):
    replica = PatroniCluster(health_gate).replicas()[0]
    with expect_alert(
        "PatroniMemberDown", {"job": "patroni", "instance": f"{replica}:8008"}, fault=Stopped(container(replica))
    ):
        pass


@pytest.mark.faults("Killed@vector-db")
@allure.title("PostgreSQL down: the vector DB's postmaster killed fires PostgresDown{cluster=vector}")
def test_postgres_down(health_gate):
    with expect_alert("PostgresDown", {"job": "postgres", "cluster": "vector"}, fault=Killed(container("vector-db"))):
        pass


@pytest.mark.faults("Stopped@etcd-member")
@allure.title("etcd member down: a stopped etcd follower fires EtcdMemberDown")
def test_etcd_member_down(health_gate):
    followers = sorted(i for i, v in prometheus.values('etcd_server_is_leader{job="etcd"}').items() if v == 0)
    assert followers, "no etcd follower reports etcd_server_is_leader"
    member = followers[0].split(":")[0]
    with expect_alert("EtcdMemberDown", {"job": "etcd", "instance": followers[0]}, fault=Stopped(container(member))):
        pass


@pytest.mark.faults("Stopped@redis")
@allure.title("Redis down: a stopped Redis fires RedisDown")
def test_redis_down(health_gate):
    with expect_alert("RedisDown", {"job": "redis"}, fault=Stopped(container("redis"))):
        pass


@pytest.mark.faults("MaintenanceMode@patroni-api", "Paused@patroni-leader")
@allure.title(
    "no leader: the leader frozen under maintenance mode fires PatroniNoLeader and "
    "HAProxyBackendNoServer{proxy=primary}"
)
def test_no_leader_and_haproxy_backend_without_server(health_gate):
    """Maintenance mode keeps the replicas from taking over, so the cluster stays leaderless until heal."""
    leader = PatroniCluster(health_gate).leader()
    with MaintenanceMode():
        with expect_alerts(
            ("PatroniNoLeader", None), ("HAProxyBackendNoServer", {"proxy": "primary"}), fault=Paused(container(leader))
        ):
            pass


@pytest.mark.faults("Reconfigured@stack:traefik")
@allure.title("Traefik without TCP routers: started on an empty dynamic directory fires TraefikNoTCPRouters")
def test_traefik_without_tcp_routers(health_gate, tmp_path):
    empty = tmp_path / "dynamic-empty"
    empty.mkdir()
    for p in (tmp_path, empty):
        p.chmod(0o755)
    with expect_alert("TraefikNoTCPRouters", fault=Reconfigured("traefik", {"DPG_TRAEFIK_DYNAMIC_DIR": str(empty)})):
        missing = prometheus.values('probe_success{job="traefik-tcp-routers"} == 0')
        assert sorted(missing) == ["citus-coordinator", "patroni-primary", "patroni-replicas"], missing


@pytest.mark.faults("MaintenanceMode@patroni-api", "ReplayPaused@patroni-replica")
@allure.title("replica lag: WAL replay paused on a replica while 5 MB are written fires PostgresReplicaLag")
def test_replica_lag(health_gate):
    """Under maintenance mode: Patroni would otherwise resume the paused replay within seconds."""
    replica = PatroniCluster(health_gate).replicas()[0]
    table = "public.dpg_monitoring_lag"
    rw = endpoints.haproxy().conninfo(connect_timeout=3)
    try:
        with MaintenanceMode(), expect_alert("PostgresReplicaLag", {"application_name": replica}) as lag:
            with ReplayPaused(replica):
                lag.injected()
                with psycopg.connect(**rw, autocommit=True) as conn:
                    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id int, pad text)")
                    conn.execute(f"INSERT INTO {table} SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")
                lag.wait_firing()
                bytes_behind = prometheus.values(f'pg_stat_replication_pg_wal_lsn_diff{{application_name="{replica}"}}')
                allure.attach(str(bytes_behind), name="replay lag (bytes) while paused")
    finally:
        with psycopg.connect(**rw, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.faults("Stopped@pgbackrest")
@allure.title("WAL archiving failing: the pgBackRest repository host stopped fires PostgresWalArchivingFailing")
def test_wal_archiving_failing(health_gate):
    (mode,) = query_one(endpoints.haproxy(), "SELECT current_setting('archive_mode')")
    if mode == "off":
        pytest.skip(
            "WAL archiving is not configured (archive_mode=off in the Patroni cluster): the rule is "
            "covered by its promtool unit test only"
        )
    try:
        with expect_alert("PostgresWalArchivingFailing", {"cluster": "patroni"}) as failing:
            with Stopped(container("pgbackrest")):
                failing.injected()
                switch_wal(PatroniCluster(health_gate).leader())  # a complete segment to push now
                failing.wait_firing()
    finally:
        with psycopg.connect(**endpoints.haproxy().conninfo(connect_timeout=3), autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS public.dpg_monitoring_archive")


def switch_wal(leader: str) -> None:
    """Complete a WAL segment (with something in it) so that the archiver has a file to push (superuser)."""
    with psycopg.connect(**endpoints.node(leader, superuser=True).conninfo(connect_timeout=3), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.dpg_monitoring_archive (at timestamptz)")
        conn.execute("INSERT INTO public.dpg_monitoring_archive VALUES (now())")
        conn.execute("SELECT pg_switch_wal()")


@pytest.mark.faults("Reconfigured@stack:monitoring", "Stopped@redis")
@allure.title("a broken rule turns the assertion red: a deleted rule is AlertNotLoaded, a wrong one AlertNotFired")
def test_broken_rules_fail_the_alert_assertions(health_gate, tmp_path):
    rules = scratch_copy(COMPOSE_DIR / "config" / "prometheus" / "rules", tmp_path / "rules")
    doc = yaml.safe_load((rules / "dpg.yml").read_text())
    for group in doc["groups"]:
        group["rules"] = [r for r in group["rules"] if r.get("alert") != "PatroniMemberDown"]
        for r in group["rules"]:
            if r.get("alert") == "RedisDown":
                r["expr"] = "redis_up == 2"  # looks plausible, never true
    (rules / "dpg.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    with Reconfigured("monitoring", {"DPG_PROMETHEUS_RULES_DIR": str(rules)}):
        wait_for(
            lambda: "RedisDown" in prometheus.rule_names() and not target_problems(expected_targets(health_gate)),
            within=TIMEOUTS.stack_up,
            what="Prometheus on the broken rules, every target scraped",
        )
        with pytest.raises(AlertNotLoaded):
            with expect_alert("PatroniMemberDown"):
                pass
        started = time.monotonic()
        with pytest.raises(AlertNotFired) as caught:
            with expect_alert("RedisDown", {"job": "redis"}, fault=Stopped(container("redis"))):
                pass
        allure.attach(f"{caught.value}\nafter {time.monotonic() - started:.1f} s", name="AlertNotFired")
        wait_for(
            lambda: prometheus.values("redis_up") == {"redis-exporter:9121": 1.0},
            within=TIMEOUTS.stack_up,
            what="redis_up back to 1 after the heal",
        )


@pytest.mark.faults("Stopped@citus-worker-2")
@pytest.mark.citus
@allure.title("Citus worker down: a stopped worker fires CitusWorkerDown (coordinator's run_command_on_workers)")
def test_citus_worker_down(health_gate, citus_stack):
    wait_for(
        lambda: not target_problems(expected_targets(citus_stack)),
        within=TIMEOUTS.stack_up,
        what="the Citus exporter discovered and scraped",
    )
    with expect_alert(
        "CitusWorkerDown", {"job": "citus", "worker": "citus-worker-2"}, fault=Stopped(container("citus-worker-2"))
    ):
        pass
    with allure.step("Citus health gate"):
        assert_healthy(citus_stack, ["citus"], within=TIMEOUTS.rejoin)
