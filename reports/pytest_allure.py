"""Allure run metadata: environment.properties (component versions, Patroni timings) and categories.json."""
from __future__ import annotations

import json
import os
from pathlib import Path

CATEGORIES = [
    {"name": "SLO breach", "matchedStatuses": ["failed"], "messageRegex": r".*(SLO|write gap).*"},
    {"name": "Data loss", "matchedStatuses": ["failed"], "messageRegex": r".*(lost|data loss).*"},
    {"name": "Split brain", "matchedStatuses": ["failed"], "messageRegex": r".*split.brain.*"},
    {"name": "Infrastructure error", "matchedStatuses": ["broken", "failed"],
     "messageRegex": r".*(topology|Docker|not reached within|Timeout|ConnectionError).*"},
]


#: environment.properties key -> (container, variable, compose default): the settings a failover number depends on,
#: read from the running container (what the cluster really runs with), else the default the compose file uses
SETTINGS = {
    "patroni.ttl": ("dpg-patroni-1", "DPG_TTL", "20"),
    "patroni.loop_wait": ("dpg-patroni-1", "DPG_LOOP_WAIT", "1"),
    "patroni.retry_timeout": ("dpg-patroni-1", "DPG_RETRY_TIMEOUT", "3"),
    "patroni.synchronous_mode": ("dpg-patroni-1", "DPG_SYNCHRONOUS_MODE", "false"),
    "patroni.fast_leader_stop": ("dpg-patroni-1", "DPG_FAST_LEADER_STOP", "true"),
    "patroni.postmaster_watch": ("dpg-patroni-1", "DPG_POSTMASTER_WATCH", "true"),
    "postgresql.wal_segsize_mb": ("dpg-patroni-1", "DPG_WAL_SEGSIZE_MB", "1"),
    "pgbackrest.repo_host": ("dpg-patroni-1", "DPG_PGBACKREST_REPO_HOST", "pgbackrest"),
    "restore.miss_ttl_ms": ("dpg-patroni-1", "DPG_RESTORE_MISS_TTL_MS", "1000"),
    "haproxy.inter": ("dpg-haproxy", "DPG_HAPROXY_INTER", "250ms"),
    "haproxy.retries": ("dpg-haproxy", "DPG_HAPROXY_RETRIES", "0"),
    "haproxy.rw_check": ("dpg-haproxy", "DPG_HAPROXY_RW_CHECK", "/primary"),
}


def _environment() -> dict[str, str]:
    env = {
        "machine": f"{os.cpu_count()} cores",
        "probes.retry_cap_ms": os.environ.get("DPG_PROBE_RETRY_CAP_MS", "100"),
        "harness.nice": os.environ.get("DPG_HARNESS_NICE", "10"),
    }
    env.update({key: os.environ.get(var, default) for key, (_, var, default) in SETTINGS.items()})
    # not a container setting: every experiment puts the harness's value into the cluster's dynamic config for
    # its run and restores it after (chaos.cluster_settings), so the cluster shows it only while a test runs
    from chaos.cluster_settings import probe_label
    from chaos.slo import member_probe_timeout_ms
    from topology.errors import TopologyError
    try:
        env["patroni.member_probe_timeout"] = probe_label(member_probe_timeout_ms())
    except TopologyError as err:
        env["patroni.member_probe_timeout"] = f"invalid: {err}"
    try:
        import docker
        client = docker.from_env(timeout=5)
        running: dict[str, dict[str, str]] = {}      # container -> its environment, each asked once
        for name in {c for c, _, _ in SETTINGS.values()}:
            try:
                running[name] = dict(e.split("=", 1) for e in client.containers.get(name).attrs["Config"]["Env"])
            except Exception:  # noqa: BLE001 - stack not running: keep the defaults
                continue
        for key, (name, var, _) in SETTINGS.items():
            if var in running.get(name, {}):
                env[key] = running[name][var]
        for name, cmd in (("postgresql", ["postgres", "--version"]), ("patroni", ["patroni", "--version"])):
            try:
                out = client.containers.get("dpg-patroni-1").exec_run(cmd).output.decode().strip()
                env[name] = out.splitlines()[-1] if out else "?"
            except Exception:  # noqa: BLE001 - stack not running
                pass
        for name, c, cmd in (("etcd", "dpg-etcd-1", ["etcd", "--version"]), ("haproxy", "dpg-haproxy", ["haproxy", "-v"]),
                             ("pgbouncer", "dpg-pgbouncer", ["pgbouncer", "--version"]),
                             ("traefik", "dpg-traefik", ["traefik", "version"])):
            try:
                out = client.containers.get(c).exec_run(cmd).output.decode().strip()
                env[name] = out.splitlines()[0][:80] if out else "?"
            except Exception:  # noqa: BLE001
                pass
    except Exception:  # noqa: BLE001 - no Docker: metadata is best effort
        pass
    return env


def pytest_sessionfinish(session, exitstatus):
    alluredir = session.config.getoption("allure_report_dir", default=None)
    if not alluredir or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    out = Path(alluredir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))
    (out / "environment.properties").write_text(
        "".join(f"{k}={v}\n" for k, v in sorted(_environment().items())))
