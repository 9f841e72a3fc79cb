"""Allure run metadata: environment.properties (component versions, Patroni timings) and categories.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

CATEGORIES = [
    {"name": "SLO breach", "matchedStatuses": ["failed"], "messageRegex": r".*(SLO|write gap).*"},
    {"name": "Data loss", "matchedStatuses": ["failed"], "messageRegex": r".*(lost|data loss).*"},
    {"name": "Split brain", "matchedStatuses": ["failed"], "messageRegex": r".*split.brain.*"},
    {
        "name": "Infrastructure error",
        "matchedStatuses": ["broken", "failed"],
        "messageRegex": r".*(topology|Docker|not reached within|Timeout|ConnectionError).*",
    },
]


#: environment.properties key -> (role, variable, compose default): settings of this project's images a failover
#: number depends on, read from the running container, else the default the compose file uses ("patroni" = the
#: first Patroni member). Patroni's own timings come from its dynamic config (/config), the truth for any cluster.
SETTINGS = {
    "patroni.fast_leader_stop": ("patroni", "DPG_FAST_LEADER_STOP", "true"),
    "patroni.postmaster_watch": ("patroni", "DPG_POSTMASTER_WATCH", "true"),
    "postgresql.wal_segsize_mb": ("patroni", "DPG_WAL_SEGSIZE_MB", "1"),
    "pgbackrest.repo_host": ("patroni", "DPG_PGBACKREST_REPO_HOST", "pgbackrest"),
    "restore.miss_ttl_ms": ("patroni", "DPG_RESTORE_MISS_TTL_MS", "1000"),
    "haproxy.inter": ("haproxy", "DPG_HAPROXY_INTER", "250ms"),
    "haproxy.retries": ("haproxy", "DPG_HAPROXY_RETRIES", "0"),
    "haproxy.rw_check": ("haproxy", "DPG_HAPROXY_RW_CHECK", "/primary"),
}
DYNAMIC = ("ttl", "loop_wait", "retry_timeout", "synchronous_mode", "failsafe_mode", "maximum_lag_on_failover")
VERSION_COMMANDS = (  # (key, role, argv): the first line it prints
    ("etcd", "etcd", ["etcd", "--version"]),
    ("haproxy", "haproxy", ["haproxy", "-v"]),
    ("pgbouncer", "pgbouncer", ["pgbouncer", "--version"]),
    ("traefik", "traefik", ["traefik", "version"]),
)


def _target(env: dict[str, str]) -> None:
    """Which deployment this run tested: name, kind, where it came from, its engines, the safety catch."""
    from topology.inventory import current

    inv = current()
    env["target.name"] = inv.name
    env["target.kind"] = inv.kind
    env["target.source"] = inv.source
    env["target.engines"] = ", ".join(f"{n}={e.url}" for n, e in inv.engines.items())
    env["target.faults"] = "allowed" if inv.faults_allowed else "forbidden"


def _from_cluster(env: dict[str, str]) -> None:
    """What the running cluster says: Patroni's dynamic config and versions, PostgreSQL's version."""
    import psycopg
    import requests

    from topology import endpoints
    from topology.inventory import current

    inv = current()
    for m in inv.patroni:
        try:
            config = requests.get(m.api + "/config", timeout=2).json()
            env.update({f"patroni.{k}": str(config[k]) for k in DYNAMIC if k in config})
            env["patroni"] = "Patroni " + str(requests.get(m.api + "/patroni", timeout=2).json()["patroni"]["version"])
            break
        except Exception:
            continue
    try:
        with psycopg.connect(**endpoints.haproxy().conninfo(connect_timeout=2), autocommit=True) as conn:
            env["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    except Exception:
        pass


def _from_containers(env: dict[str, str]) -> None:
    from topology.inventory import current, engines

    inv = current()
    role_of = {"patroni": inv.patroni_names[0], "etcd": inv.etcd_names[0]}
    running: dict[str, dict[str, str]] = {}  # role -> its environment, each asked once
    for role in {r for r, _, _ in SETTINGS.values()}:
        try:
            c = engines().container(role_of.get(role, role))
            running[role] = dict(e.split("=", 1) for e in c.attrs["Config"]["Env"] if "=" in e)
        except Exception:
            continue
    for key, (role, var, _) in SETTINGS.items():
        if var in running.get(role, {}):
            env[key] = running[role][var]
    for key, role, cmd in VERSION_COMMANDS:
        try:
            out = engines().container(role_of.get(role, role)).exec_run(cmd).output.decode().strip()
            env[key] = out.splitlines()[0][:80] if out else "?"
        except Exception:
            pass


def _environment() -> dict[str, str]:
    env = {
        "machine": f"{os.cpu_count()} cores",
        "probes.retry_cap_ms": os.environ.get("DPG_PROBE_RETRY_CAP_MS", "100"),
        "harness.nice": os.environ.get("DPG_HARNESS_NICE", "10"),
    }
    env.update({key: default for key, (_, _, default) in SETTINGS.items()})
    # not a container setting: every experiment puts the harness's value into the cluster's dynamic config for
    # its run and restores it after (chaos.experiments.cluster_settings), so the cluster shows it only while a test runs
    from chaos.checkers.slo import member_probe_timeout_ms
    from chaos.experiments.cluster_settings import probe_label
    from topology.errors import TopologyError

    try:
        env["patroni.member_probe_timeout"] = probe_label(member_probe_timeout_ms())
    except TopologyError as err:
        env["patroni.member_probe_timeout"] = f"invalid: {err}"
    for step in (_target, _from_cluster, _from_containers):
        try:  # best effort: the environment file must be written even when the cluster is gone
            step(env)
        except Exception:
            continue
    return env


def pytest_sessionfinish(session, exitstatus):
    alluredir = session.config.getoption("allure_report_dir", default=None)
    if not alluredir or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    out = Path(alluredir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))
    (out / "environment.properties").write_text("".join(f"{k}={v}\n" for k, v in sorted(_environment().items())))
