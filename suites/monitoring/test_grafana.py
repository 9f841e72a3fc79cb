"""Grafana loads the provisioned datasource and every dashboard of compose/config/grafana.

Runs only where $DPG_GRAFANA_IMAGE is present locally (no registry is reachable here and the image is never
faked); otherwise the `grafana_stack` fixture skips with the topology's reason.
"""

from __future__ import annotations

import json

import allure
import requests

from topology import evidence
from topology.stacks import COMPOSE_DIR, port

pytestmark = [allure.parent_suite("monitoring"), allure.suite("grafana")]

DASHBOARDS = COMPOSE_DIR / "config" / "grafana" / "dashboards"


def api(path: str, **params):
    r = requests.get(f"http://127.0.0.1:{port('DPG_PORT_GRAFANA')}{path}", params=params, timeout=5)
    r.raise_for_status()
    return r.json()


def test_grafana_loads_the_datasource_and_every_dashboard(grafana_stack):
    ds = api("/api/datasources/uid/dpg-prometheus")
    assert (ds["type"], ds["url"]) == ("prometheus", "http://prometheus:9090")
    expected = {json.loads(p.read_text())["uid"] for p in DASHBOARDS.glob("*.json")}
    found = {d["uid"] for d in api("/api/search", type="dash-db")}
    evidence.attach_json("grafana dashboards", sorted(found))
    assert expected <= found, f"not loaded: {sorted(expected - found)}"
    for uid in sorted(expected):
        board = api(f"/api/dashboards/uid/{uid}")["dashboard"]
        assert board["panels"], uid


def test_grafana_reaches_prometheus_through_the_datasource(grafana_stack):
    health = api("/api/datasources/uid/dpg-prometheus/health")
    assert health.get("status") == "OK", health
