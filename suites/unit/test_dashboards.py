"""Grafana provisioning, validated offline: the dashboards are JSON Grafana can load, their uids are unique,
every panel queries the provisioned Prometheus datasource, and the provisioning files match the compose mounts.

(Each PromQL expression is parsed by promtool in suites/monitoring/test_rules.py and run against the live
Prometheus in suites/monitoring/test_targets.py; Grafana itself loads them in suites/monitoring/test_grafana.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from topology.stacks import COMPOSE_DIR

pytestmark = pytest.mark.unit

GRAFANA = COMPOSE_DIR / "config" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
REQUIRED = {"dpg-overview", "dpg-patroni", "dpg-citus", "dpg-traefik", "dpg-redis"}


def provisioned_datasource() -> dict:
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert len(sources) == 1, sources
    return sources[0]


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_datasource_is_our_prometheus():
    ds = provisioned_datasource()
    assert (ds["type"], ds["uid"], ds["url"], ds.get("isDefault")) == (
        "prometheus",
        "dpg-prometheus",
        "http://prometheus:9090",
        True,
    )


def test_dashboard_provider_reads_the_directory_compose_mounts():
    (provider,) = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dpg.yml").read_text())["providers"]
    compose = yaml.safe_load((COMPOSE_DIR / "grafana.yml").read_text())
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["grafana"]["volumes"]}
    assert mounts[provider["options"]["path"]] == "./config/grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./config/grafana/provisioning"


def test_every_required_dashboard_exists_with_a_unique_uid_and_title():
    boards = [load(p) for p in DASHBOARDS]
    uids = [b["uid"] for b in boards]
    titles = [b["title"] for b in boards]
    assert set(uids) >= REQUIRED
    assert len(set(uids)) == len(uids), uids
    assert len(set(titles)) == len(titles), titles
    for path, b in zip(DASHBOARDS, boards, strict=True):
        assert path.stem == b["uid"], f"{path.name}: file name and uid differ"
        assert len(b["uid"]) <= 40 and "id" not in b, f"{path.name}: uid too long or a fixed numeric id"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_panels_query_the_provisioned_datasource(path):
    uid = provisioned_datasource()["uid"]
    board = load(path)
    panels = board["panels"]
    assert panels, "no panels"
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids), f"duplicate panel ids {ids}"
    for p in panels:
        where = f"{path.stem}/{p.get('title')}"
        assert p["datasource"] == {"type": "prometheus", "uid": uid}, where
        assert p["targets"], f"{where}: no query"
        refs = [t["refId"] for t in p["targets"]]
        assert len(set(refs)) == len(refs), f"{where}: duplicate refIds"
        for t in p["targets"]:
            assert t.get("datasource", p["datasource"]) == p["datasource"], where
            assert t["expr"].strip(), f"{where}: empty expression"
            assert balanced(t["expr"]), f"{where}: unbalanced brackets or quotes in {t['expr']!r}"
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, f"{where}: gridPos {g}"


def balanced(expr: str) -> bool:
    """Brackets nest and quotes close (a cheap offline guard; promtool parses for real)."""
    pairs, stack, quote = {")": "(", "]": "[", "}": "{"}, [], None
    for ch in expr:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return False
    return not stack and quote is None


def test_the_bracket_guard_can_fail():
    assert balanced('sum by (job) (rate(up{job="x"}[1m]))')
    assert not balanced("sum(rate(up[1m])")
    assert not balanced('up{job="x}')
