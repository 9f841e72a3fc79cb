"""The inventory: every kind of mistake is one clear line naming the key; the embedded topology is an inventory too;
credentials never appear in what a report shows. No Docker."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from topology import inventory
from topology.errors import TopologyError

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

GOOD = {
    "version": 1,
    "name": "seed-staging",
    "faults": "allowed",
    "engines": {"local": {"url": "unix:///var/run/docker.sock"}},
    "database": {
        "name": "distributed_postgres_cluster",
        "app": {"user": "dpg_cluster", "password": {"env": "INV_TEST_PW"}},
        "readonly": {"user": "readonly_user", "password": {"env": "INV_TEST_PW"}},
    },
    "network": "seed-net",
    "patroni": {
        "scope": "dpg",
        "members": {
            f"patroni-{i}": {
                "container": f"patroni-{i}",
                "api": f"http://127.0.0.1:{38007 + i}",
                "postgres": f"127.0.0.1:{35432 + i}",
            }
            for i in (1, 2, 3)
        },
    },
    "etcd": {
        "members": {
            f"etcd-{i}": {"container": {"regex": f"^etcd-{i}$"}, "client_url": f"http://127.0.0.1:{53790 + i}"}
            for i in (1, 2, 3)
        }
    },
    "services": {"haproxy": {"container": {"label": "com.docker.compose.service=haproxy"}}},
    "endpoints": {
        "haproxy_rw": "127.0.0.1:35000",
        "haproxy_ro": "127.0.0.1:35001",
        "haproxy_stats": "http://127.0.0.1:37000/;csv",
    },
}


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv("INV_TEST_PW", "s3cret-value")


def problems_of(data) -> list[str]:
    with pytest.raises(TopologyError) as err:
        inventory.parse(data, source="t.yml")
    lines = str(err.value).splitlines()
    assert lines[0].startswith("inventory t.yml: "), lines
    return [line.removeprefix("  - ") for line in lines[1:]] or [lines[0]]


def mutate(path: str, value=None, *, delete: bool = False):
    data = copy.deepcopy(GOOD)
    keys = path.split(".")
    node = data
    for k in keys[:-1]:
        node = node[k]
    if delete:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


def test_a_good_inventory_loads_with_its_roles_engines_and_endpoints():
    inv = inventory.parse(GOOD, source="t.yml")
    assert inv.is_target and inv.faults_allowed and not inv.remote_allowed
    assert inv.patroni_names == ("patroni-1", "patroni-2", "patroni-3")
    assert inv.role("etcd-2").selector.regex == "^etcd-2$"
    assert inv.role("haproxy").selector.label == "com.docker.compose.service=haproxy"
    assert str(inv.endpoint("haproxy_rw")) == "127.0.0.1:35000"
    assert inv.stacks() == ["patroni"]
    assert inv.missing_for("traefik") == ["endpoints.traefik_rw", "endpoints.traefik_ro", "endpoints.traefik_api"]
    assert inv.login("app").password.reveal() == "s3cret-value"


def test_a_report_never_shows_a_credential():
    inv = inventory.parse(GOOD, source="t.yml")
    shown = repr(inv) + str(inv.summary()) + repr(inv.logins)
    assert "s3cret-value" not in shown
    assert "env INV_TEST_PW" in str(inv.summary())
    from topology import endpoints

    with inventory.using(inv):
        ep = endpoints.haproxy()
        assert ep.password == "s3cret-value" and "s3cret-value" not in repr(ep)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (mutate("colour", "blue"), "(top level): unknown key(s) 'colour'"),
        (mutate("patroni", delete=True), "(top level): 'patroni' is missing"),
        (mutate("version", 2), "version: 1 was expected"),
        (mutate("faults", "yes"), "faults: 'yes' is not one of ['allowed', 'forbidden']"),
        (mutate("endpoints.haproxy_rw", "localhost"), "endpoints.haproxy_rw: 'localhost' is not host:port"),
        (mutate("endpoints.haproxy_stats", "ftp://x"), "endpoints.haproxy_stats: 'ftp://x' is not valid here"),
        (mutate("endpoints.pgbouncers", "127.0.0.1:1"), "endpoints: unknown key(s) 'pgbouncers'"),
        (mutate("database.app.password", "hunter2"), "database.app.password: a password is given by reference only"),
        (mutate("patroni.members.patroni-1.container", {"name": "a", "regex": "b"}), "a container is a name, or"),
        (mutate("engines.local.url", "http://x"), "engines.local.url: 'http://x' is not valid here"),
    ],
    ids=[
        "unknown-key",
        "missing-section",
        "version",
        "safety-catch-value",
        "hostport",
        "url",
        "unknown-endpoint",
        "inline-password",
        "two-selectors",
        "engine-scheme",
    ],
)
def test_each_schema_mistake_is_one_line_naming_the_key(data, expected):
    found = problems_of(data)
    assert len(found) == 1, found
    assert expected in found[0], found


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (mutate("patroni.members.patroni-2.engine", "node-9"), "patroni.members.patroni-2.engine: 'node-9' is not"),
        (mutate("etcd.members.etcd-1.container", {"regex": "("}), "etcd.members.etcd-1.container.regex: '(' is not a"),
        (mutate("endpoints.haproxy_rw", "10.0.0.5:5000"), "endpoints.haproxy_rw: 10.0.0.5 is not a loopback address"),
        (mutate("endpoints.haproxy_ro", "127.0.0.1:70000"), "endpoints.haproxy_ro: port 70000 out of range"),
        (mutate("database.app.password", {"env": "INV_TEST_UNSET"}), "environment variable INV_TEST_UNSET is not set"),
        (mutate("database.readonly.password", {"file": "/nonexistent/pw"}), "no file /nonexistent/pw"),
        (mutate("services.etcd-1", {"container": "x"}), "role 'etcd-1' is named twice"),
        (mutate("services.twin", {"container": "patroni-1"}), "services.twin.container: the same container as"),
        (mutate("engines.far", {"url": "tcp://10.1.2.3:2376"}), "engines.far.url: 10.1.2.3 is not a loopback"),
    ],
    ids=[
        "unknown-engine",
        "bad-regex",
        "remote-host",
        "port-range",
        "env-unset",
        "file-missing",
        "role-twice",
        "same-container",
        "remote-engine",
    ],
)
def test_each_semantic_mistake_is_one_line_naming_the_key(data, expected, monkeypatch):
    monkeypatch.delenv("INV_TEST_UNSET", raising=False)
    found = problems_of(data)
    assert len(found) == 1, found
    assert expected in found[0], found


def test_remote_addresses_need_the_inventory_to_allow_them():
    data = mutate("endpoints.haproxy_rw", "10.0.0.5:5000")
    data["remote_addresses"] = "allowed"
    assert inventory.parse(data, source="t.yml").endpoint("haproxy_rw").host == "10.0.0.5"


def test_several_mistakes_are_several_lines(tmp_path):
    data = mutate("endpoints.haproxy_rw", "nope")
    data["colour"] = "blue"
    assert len(problems_of(data)) == 2


def test_a_file_that_is_not_yaml_says_where(tmp_path):
    bad = tmp_path / "inv.yml"
    bad.write_text("name: x\n  bad: [\n")
    with pytest.raises(TopologyError, match=r"inventory .*inv.yml: not YAML at line 2"):
        inventory.load(bad)
    with pytest.raises(TopologyError, match="cannot read it"):
        inventory.load(tmp_path / "absent.yml")
    (tmp_path / "list.yml").write_text("- a\n")
    with pytest.raises(TopologyError, match="expected a mapping at the top level"):
        inventory.load(tmp_path / "list.yml")


def test_the_embedded_topology_is_an_inventory_of_every_stack(monkeypatch):
    monkeypatch.setenv("DPG_PORT_HAPROXY_RW", "15000")
    inv = inventory.embedded()
    assert not inv.is_target and inv.faults_allowed
    assert inv.stacks() == list(inventory.STACK_NEEDS)
    assert str(inv.endpoint("haproxy_rw")) == "127.0.0.1:15000"
    assert inv.role("patroni-2").selector.name == "dpg-patroni-2" and inv.role("patroni-2").stack == "patroni"
    assert inv.login("app").password.reveal() == os.environ.get("DPG_DB_PASSWORD", "dpg_cluster_pw")


def test_fault_targets_expand_to_roles():
    inv = inventory.parse(GOOD, source="t.yml")
    assert inv.expand("patroni-leader")[0] == inv.patroni_names
    assert inv.expand("etcd-quorum")[0] == inv.etcd_names
    assert inv.expand("patroni-api")[0] == ()
    assert inv.expand("haproxy")[0] == ("haproxy",)
    assert set(inv.expand("stack:patroni")[0]) == {*inv.patroni_names, *inv.etcd_names, "haproxy"}
    with pytest.raises(TopologyError, match="unknown fault target 'pgbouncer'"):
        inv.expand("pgbouncer")  # a role this target does not describe


def _pytest(*args: str, inv: dict | None, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "INV_TEST_PW": "s3cret-value", "DPG_HARNESS_NICE": "0"}
    env.pop("DPG_TARGET", None)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    if inv is not None:
        path = tmp_path / "inv.yml"
        path.write_text(yaml.safe_dump(inv))
        cmd += ["--target", str(path)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_dry_run_lists_each_tests_faults_and_the_containers_they_may_touch(tmp_path):
    run = _pytest("suites/failover/test_leader_failures.py", "--dry-run", inv=GOOD, tmp_path=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "dry run against seed-staging (target" in out
    block = out.split("test_hard_kill_of_leader:")[1].split("suites/")[0]
    assert "Killed @ patroni-leader (one of them, the leader when the test runs)" in block
    assert all(f"patroni-{i} [" in block for i in (1, 2, 3)), block
    assert "engine local (unix:///var/run/docker.sock)" in block
    assert "Isolated @ patroni-leader" in out.split("test_isolated_leader_demotes:")[1].split("suites/")[0]
    assert "nothing injected, nothing started" in out


def test_the_safety_catch_refuses_destructive_tests_at_once(tmp_path):
    forbidden = {**GOOD, "faults": "forbidden"}
    run = _pytest("suites/failover/test_leader_failures.py", inv=forbidden, tmp_path=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "does not say `faults: allowed`: refusing to start 11 destructive test(s)" in run.stdout + run.stderr


def test_a_bad_inventory_ends_pytest_at_once_with_one_line_per_mistake(tmp_path):
    run = _pytest("suites/smoke", inv=mutate("endpoints.haproxy_rw", "nope"), tmp_path=tmp_path)
    assert run.returncode == 2
    assert "endpoints.haproxy_rw: 'nope' is not host:port" in run.stderr
    assert "Traceback" not in run.stderr
