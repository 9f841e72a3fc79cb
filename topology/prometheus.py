"""Read Prometheus through its HTTP API on 127.0.0.1: instant queries, alerts and scrape targets.

Shared by the fault suites (an alert must fire during a fault and resolve after heal) and the health gate.
"""

from __future__ import annotations

import requests

from .errors import TopologyError
from .stacks import port


def base_url() -> str:
    return f"http://127.0.0.1:{port('DPG_PORT_PROMETHEUS')}"


def _get(path: str, **params) -> dict:
    try:
        r = requests.get(f"{base_url()}{path}", params=params, timeout=5)
    except requests.ConnectionError:
        raise TopologyError(f"Prometheus is not reachable at {base_url()} (is the monitoring stack up?)") from None
    body = r.json()
    if body.get("status") != "success":
        raise TopologyError(f"Prometheus {path} {params}: {body.get('error', r.text[:200])}")
    return body["data"]


def query(expr: str) -> list[dict]:
    """Instant vector query: [{'metric': {...}, 'value': [ts, '1']}, ...]."""
    return _get("/api/v1/query", query=expr)["result"]


def values(expr: str) -> dict[str, float]:
    """An instant query as {instance (or the whole label set): value}."""
    out = {}
    for row in query(expr):
        labels = row["metric"]
        key = labels.get("instance") or ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        out[key] = float(row["value"][1])
    return out


def alerts(state: str | None = None) -> list[dict]:
    """Active alerts (pending and firing), optionally only those in `state`."""
    found = _get("/api/v1/alerts")["alerts"]
    return [a for a in found if state is None or a["state"] == state]


def firing(name: str) -> list[dict]:
    return [a for a in alerts("firing") if a["labels"].get("alertname") == name]


def targets() -> list[dict]:
    return _get("/api/v1/targets")["activeTargets"]


def rule_names() -> set[str]:
    groups = _get("/api/v1/rules")["groups"]
    return {r["name"] for g in groups for r in g["rules"] if r.get("type") == "alerting"}
