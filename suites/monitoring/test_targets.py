"""Every scrape target of the running stacks is present and up; a missing one is a failure (and is caught);
every Grafana dashboard expression runs against the live Prometheus without error."""

from __future__ import annotations

import json

import allure
import pytest

from topology import evidence, prometheus
from topology.alerts import EXPECTED_TARGETS, expected_targets, target_problems
from topology.stacks import COMPOSE_DIR

from .conftest import STACKS

pytestmark = [allure.parent_suite("monitoring"), allure.suite("targets")]

DASHBOARDS = COMPOSE_DIR / "config" / "grafana" / "dashboards"


def test_every_scrape_target_of_the_running_stacks_is_up(scraped_stacks):
    expected = expected_targets(scraped_stacks)
    assert set().union(*(EXPECTED_TARGETS[s] for s in STACKS if s in EXPECTED_TARGETS)) <= expected
    evidence.attach_json(
        "targets",
        [
            {
                "job": t["labels"].get("job"),
                "instance": t["labels"].get("instance"),
                "health": t["health"],
                "lastError": t.get("lastError"),
            }
            for t in prometheus.targets()
        ],
    )
    assert target_problems(expected) == []


def test_a_missing_target_is_reported(scraped_stacks):
    """The check above can fail: a target the topology expects but Prometheus does not scrape is named."""
    ghost = ("patroni", "patroni-4:8008")
    assert target_problems(expected_targets(scraped_stacks) | {ghost}) == ["target patroni/patroni-4:8008 missing"]


def test_every_alert_rule_is_loaded(scraped_stacks):
    import yaml

    doc = yaml.safe_load((COMPOSE_DIR / "config" / "prometheus" / "rules" / "dpg.yml").read_text())
    assert {r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r} == prometheus.rule_names()


@pytest.mark.parametrize("dashboard", sorted(p.name for p in DASHBOARDS.glob("*.json")))
def test_dashboard_expressions_run_on_prometheus(scraped_stacks, dashboard):
    errors, empty = [], []
    for panel in json.loads((DASHBOARDS / dashboard).read_text())["panels"]:
        for target in panel.get("targets", []):
            try:
                if not prometheus.query(target["expr"]):
                    empty.append(f"{panel['title']}: {target['expr']}")
            except Exception as exc:
                errors.append(f"{panel['title']}: {target['expr']}: {exc}")
    evidence.attach_json(f"{dashboard} expressions without data", empty)
    assert errors == []
