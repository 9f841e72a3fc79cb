"""The alert rules are checked with promtool (from our own dpg/prometheus image) and proven to fail when broken.

* `promtool check config` / `check rules` / `test rules` on the repository's files must pass;
* a syntax error in a copy of the rules must turn `check rules` red;
* mutation: for every alert, a copy where it can never fire and a copy where it always fires must each turn
  `promtool test rules` red, i.e. every alert has a unit test that sees it fire and one that sees it quiet;
* every PromQL expression of the Grafana dashboards parses (`promtool --experimental promql format`).

Needs only the image (CI builds it), not the running topology.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import allure
import pytest
import yaml

from topology import evidence, images, promtool
from topology.promtool import CONFIG_DIR, config_mounts

pytestmark = [allure.parent_suite("monitoring"), allure.suite("rules")]

RULES = CONFIG_DIR / "rules" / "dpg.yml"
DASHBOARDS = CONFIG_DIR.parent / "grafana" / "dashboards"

#: the alerts issue 7 asks for, by the name the rules give them
REQUIRED_ALERTS = {
    "PatroniNoLeader",
    "PostgresReplicaLag",
    "PatroniMemberDown",
    "EtcdMemberDown",
    "EtcdNoQuorum",
    "PostgresDown",
    "RedisDown",
    "CitusWorkerDown",
    "TraefikNoTCPRouters",
    "HAProxyBackendNoServer",
    "PostgresWalArchivingFailing",
}


@pytest.fixture(scope="module")
def docker_client():
    client = images.docker_client()
    reason = promtool.missing_reason(client)
    if reason:
        pytest.skip(reason)
    return client


def alert_rules(path: Path = RULES) -> list[dict]:
    return [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"] if "alert" in r]


def readable_copy(tmp_path: Path) -> Path:
    """A copy of compose/config/prometheus that the container (another uid) can read."""
    dst = tmp_path / "prometheus"
    shutil.copytree(CONFIG_DIR, dst)
    for p in [tmp_path, *dst.rglob("*"), dst]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def test_rules_cover_every_alert_of_the_issue():
    assert {r["alert"] for r in alert_rules()} >= REQUIRED_ALERTS


def test_prometheus_config_is_valid(docker_client):
    res = promtool.promtool(
        "check", "config", "/etc/prometheus/prometheus.yml", mounts=config_mounts(), client=docker_client
    )
    evidence.attach_text("promtool check config", res.output)
    assert res.ok, res.output


def test_rule_files_are_valid(docker_client):
    res = promtool.promtool(
        "check", "rules", "/etc/prometheus/rules/dpg.yml", mounts=config_mounts(), client=docker_client
    )
    evidence.attach_text("promtool check rules", res.output)
    assert res.ok, res.output
    n = sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])
    assert f"SUCCESS: {n} rules found" in res.output, res.output


def test_rule_unit_tests_pass(docker_client):
    res = promtool.promtool(
        "test", "rules", "/etc/prometheus/tests/dpg_test.yml", mounts=config_mounts(), client=docker_client
    )
    evidence.attach_text("promtool test rules", res.output)
    assert res.ok, res.output


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    """Read the unit tests: each alert is expected to fire somewhere and to be quiet somewhere."""
    tests = yaml.safe_load((CONFIG_DIR / "tests" / "dpg_test.yml").read_text())["tests"]
    cases = [c for t in tests for c in t.get("alert_rule_test", [])]
    fires = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    names = {r["alert"] for r in alert_rules()}
    assert names - fires == set(), "alerts never expected to fire"
    assert names - quiet == set(), "alerts never expected to stay quiet"


def test_a_syntax_error_turns_check_rules_red(docker_client, tmp_path):
    copy = readable_copy(tmp_path)
    rules = copy / "rules" / "dpg.yml"
    rules.write_text(rules.read_text().replace("expr: redis_up == 0", "expr: redis_up == (0", 1))
    res = promtool.promtool(
        "check", "rules", "/etc/prometheus/rules/dpg.yml", mounts=config_mounts(copy), client=docker_client
    )
    evidence.attach_text("promtool check rules on a broken copy", res.output)
    assert not res.ok, res.output
    assert "RedisDown" in res.output or "parse error" in res.output, res.output


@allure.title("mutation: every alert made never-firing or always-firing turns `promtool test rules` red")
def test_broken_alerts_turn_the_unit_tests_red(docker_client, tmp_path):
    copy = readable_copy(tmp_path)
    source = (copy / "rules" / "dpg.yml").read_text()
    mutants = tmp_path / "mutants"
    names = [r["alert"] for r in alert_rules()]
    for name in names:
        for kind, expr in (("never", "vector(1) > 2"), ("always", "vector(1)")):
            d = mutants / f"{name}-{kind}"
            (d / "rules").mkdir(parents=True)
            shutil.copytree(copy / "tests", d / "tests")
            (d / "rules" / "dpg.yml").write_text(mutate(source, name, expr))
    for p in [mutants, *mutants.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    script = (
        "for d in /mutants/*; do promtool test rules $d/tests/dpg_test.yml >/dev/null 2>&1; rc=$?; "
        'echo "${d##*/} $rc"; done'
    )
    res = promtool.run_script(script, {mutants: "/mutants"}, client=docker_client)
    verdicts = dict(line.rsplit(" ", 1) for line in res.output.split("\n") if line.strip() and " " in line)
    evidence.attach_json("mutants (exit code of promtool test rules)", verdicts)
    assert len(verdicts) == 2 * len(names), res.output
    survivors = sorted(m for m, rc in verdicts.items() if rc == "0")
    assert survivors == [], f"broken rules the unit tests did not notice: {survivors}"


def mutate(rules_text: str, alert: str, expr: str) -> str:
    """The rules with `alert`'s expression replaced (one rule only; the YAML stays otherwise identical)."""
    doc = yaml.safe_load(rules_text)
    hits = 0
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = expr
                hits += 1
    assert hits == 1, f"{alert}: {hits} rules"
    return yaml.safe_dump(doc, sort_keys=False)


def dashboard_expressions() -> list[tuple[str, str]]:
    out = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                out.append((f"{path.stem}/{panel['title']}", target["expr"]))
    return out


def test_every_dashboard_expression_parses(docker_client):
    exprs = dashboard_expressions()
    assert exprs
    script = "\n".join(
        f"promtool --experimental promql format {shlex.quote(expr)} >/dev/null 2>/tmp/err "
        f"|| echo {shlex.quote(where)}: $(cat /tmp/err)"
        for where, expr in exprs
    )
    res = promtool.run_script(script + "\ntrue", {}, client=docker_client)
    assert res.output.strip() == "", res.output


def test_a_broken_dashboard_expression_is_caught(docker_client):
    res = promtool.run_script(
        "promtool --experimental promql format 'sum(rate(up[1m]) by (job)'", {}, client=docker_client
    )
    assert not res.ok and re.search("parse error", res.output), res.output


def test_alert_bounds_agree_with_the_rules():
    """alert-bounds.yml derives each bound from the rule's `for:`; the two files must say the same."""
    from topology.alerts import BOUNDS_FILE

    declared = yaml.safe_load(BOUNDS_FILE.read_text())["alerts"]

    def seconds(d: str) -> float:
        return float(d[:-1]) * {"s": 1, "m": 60}[d[-1]]

    rules = {r["alert"]: seconds(r.get("for", "0s")) for r in alert_rules()}
    assert set(declared) == set(rules)
    assert {a: declared[a]["for"] for a in rules} == rules
    prom = yaml.safe_load((CONFIG_DIR / "prometheus.yml").read_text())["global"]
    doc = yaml.safe_load(BOUNDS_FILE.read_text())
    assert (doc["scrape_interval"], doc["evaluation_interval"]) == (
        seconds(prom["scrape_interval"]),
        seconds(prom["evaluation_interval"]),
    )


def test_expected_targets_match_the_scrape_config():
    """topology.alerts.EXPECTED_TARGETS (what the target check requires) is what prometheus.yml scrapes."""
    from topology.alerts import EXPECTED_TARGETS

    jobs = yaml.safe_load((CONFIG_DIR / "prometheus.yml").read_text())["scrape_configs"]
    static = {(j["job_name"], t) for j in jobs for sc in j.get("static_configs", []) for t in sc["targets"]}
    discovered = {
        (j["job_name"], r["replacement"])
        for j in jobs
        if j.get("dns_sd_configs")
        for r in j["relabel_configs"]
        if r.get("target_label") == "instance"
    }
    assert set().union(*EXPECTED_TARGETS.values()) == static | discovered
