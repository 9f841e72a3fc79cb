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


def _environment() -> dict[str, str]:
    env = {
        "patroni.ttl": os.environ.get("DPG_TTL", "20"),
        "patroni.loop_wait": os.environ.get("DPG_LOOP_WAIT", "1"),
        "patroni.retry_timeout": os.environ.get("DPG_RETRY_TIMEOUT", "3"),
        "patroni.synchronous_mode": os.environ.get("DPG_SYNCHRONOUS_MODE", "false"),
        "haproxy.inter": os.environ.get("DPG_HAPROXY_INTER", "250ms"),
        "haproxy.rw_check": os.environ.get("DPG_HAPROXY_RW_CHECK", "/primary"),
        "machine": f"{os.cpu_count()} cores",
    }
    try:
        import docker
        client = docker.from_env(timeout=5)
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
