"""Traefik, the router in front of everything: routers present, hot reload of the file provider, restart.

The dynamic configuration is copied to a scratch directory and Traefik is recreated on it (`Reconfigured`),
so a test can add, change, break and remove routers without touching the repository's files.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import allure
import psycopg
import pytest
import yaml

from chaos.faults import Reconfigured, ServiceRestarted
from topology import endpoints, evidence, health
from topology.health import EXPECTED_TCP_ROUTERS, query_one, traefik_routers
from topology.names import container
from topology.stacks import COMPOSE_DIR
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for

pytestmark = [pytest.mark.destructive, allure.parent_suite("traefik")]

ROUTERS_FILE = "tcp-routers.yml"


def router_names() -> set[str]:
    return {r["name"].split("@")[0] for r in traefik_routers()}


@pytest.fixture
def scratch_dynamic(write_paths_stacks, tmp_path):
    """Traefik running on a writable copy of its dynamic configuration; recreated on the original after."""
    scratch = tmp_path / "dynamic"
    shutil.copytree(COMPOSE_DIR / "config" / "traefik" / "dynamic", scratch)
    scratch.chmod(0o755)
    with Reconfigured("traefik", {"DPG_TRAEFIK_DYNAMIC_DIR": str(scratch)}):
        wait_for(
            lambda: router_names() >= set(EXPECTED_TCP_ROUTERS),
            within=TIMEOUTS.router_follow,
            what="Traefik on the scratch configuration lists its routers",
        )
        yield scratch
    health.assert_healthy(write_paths_stacks, ["traefik"], within=TIMEOUTS.stack_up)


def write_atomically(path: Path, text: str) -> None:
    """Write via rename: Traefik never reads a half-written (e.g. truncated, empty) file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def edit_routers(scratch: Path, change) -> None:
    path = scratch / ROUTERS_FILE
    doc = yaml.safe_load(path.read_text())
    change(doc["tcp"])
    write_atomically(path, yaml.safe_dump(doc))


@pytest.mark.faults("Reconfigured@stack:traefik")
@allure.title("hot reload: a router added to the file provider appears, an established session survives")
def test_hot_reload_adds_router_and_keeps_sessions(scratch_dynamic):
    with psycopg.connect(**endpoints.traefik().conninfo(), autocommit=True) as session:
        before = session.execute("SELECT pg_backend_pid()").fetchone()[0]
        started = time.monotonic()
        edit_routers(
            scratch_dynamic,
            lambda tcp: tcp["routers"].__setitem__(
                "patroni-primary-copy",
                {
                    **tcp["routers"]["patroni-primary"],
                    "entryPoints": ["pg-primary"],
                    "rule": "HostSNI(`*`)",
                    "priority": 1,
                },
            ),
        )
        wait_for(
            lambda: "patroni-primary-copy" in router_names(),
            within=TIMEOUTS.router_follow,
            what="the added router in /api/tcp/routers",
        )
        reload_s = time.monotonic() - started
        after = session.execute("SELECT pg_backend_pid()").fetchone()[0]
    evidence.attach_json("hot reload", {"router_visible_after_s": round(reload_s, 2)})
    assert after == before, "the established session was replaced during the reload"
    assert query_one(endpoints.traefik(), "SELECT pg_is_in_recovery()")[0] is False


@pytest.mark.faults("Reconfigured@stack:traefik")
@allure.title("hot reload: a removed router disappears and the suite notices it is missing")
def test_removed_router_is_detected(scratch_dynamic, write_paths_stacks):
    edit_routers(scratch_dynamic, lambda tcp: tcp["routers"].pop("patroni-replicas"))
    wait_for(
        lambda: "patroni-replicas" not in router_names(),
        within=TIMEOUTS.router_follow,
        what="patroni-replicas gone from /api/tcp/routers",
    )
    problems = health.problems(write_paths_stacks, "traefik")
    assert any("patroni-replicas missing" in p for p in problems), problems


@pytest.mark.faults("Reconfigured@stack:traefik")
@allure.title("a broken dynamic file (YAML error) on hot reload: last good routers kept, error only in the log")
def test_broken_dynamic_file_on_reload_keeps_routers(scratch_dynamic, write_paths_stacks):
    since = time.time() - 1
    write_atomically(scratch_dynamic / ROUTERS_FILE, "tcp:\n  routers: [unclosed\n")
    wait_for(
        lambda: "collecting file configs" in health.service_log(write_paths_stacks, "traefik", since=since),
        within=TIMEOUTS.router_follow,
        what="Traefik logging the YAML error",
    )
    # what Traefik does, asserted: it keeps serving the last configuration that parsed
    assert router_names() >= set(EXPECTED_TCP_ROUTERS)
    assert health.problems(write_paths_stacks, "traefik") == []
    evidence.attach_text("traefik log", health.service_log(write_paths_stacks, "traefik", since=since)[-4000:])


@pytest.mark.faults("Reconfigured@stack:traefik", "ServiceRestarted@traefik")
@allure.title("Traefik (re)started on a broken dynamic file lists no routers (the seed's `[]`): the gate names all 3")
def test_broken_dynamic_file_at_start_is_detected(scratch_dynamic, write_paths_stacks):
    write_atomically(scratch_dynamic / ROUTERS_FILE, "tcp:\n  routers: [unclosed\n")
    with ServiceRestarted(container("traefik")):
        pass
    wait_for(lambda: traefik_routers() == [], within=TIMEOUTS.router_follow, what="Traefik up with no TCP routers")
    problems = health.problems(write_paths_stacks, "traefik")
    evidence.attach_text("health problems", "\n".join(problems))
    assert sum("missing from /api/tcp/routers" in p for p in problems) == len(EXPECTED_TCP_ROUTERS), problems


@pytest.mark.faults("ServiceRestarted@traefik")
@allure.title("Traefik restart: sessions through it drop, new connections succeed again (measured)")
def test_traefik_restart_recovers(write_paths_stacks):
    session = psycopg.connect(**endpoints.traefik().conninfo(), autocommit=True)
    with ServiceRestarted(container("traefik")):
        pass
    started = time.monotonic()
    wait_for(
        lambda: query_one(endpoints.traefik(), "SELECT 1")[0] == 1,
        within=TIMEOUTS.router_follow,
        what="a new connection through Traefik 5500",
        every=0.1,
    )
    back_s = time.monotonic() - started
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()
    evidence.attach_json("restart", {"new_connections_ok_after_restart_s": round(back_s, 2)})
    health.assert_healthy(write_paths_stacks, ["traefik"], within=TIMEOUTS.stack_up)
