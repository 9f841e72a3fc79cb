"""Every DPG_* setting is checked on the host before anything starts: one line naming the variable and the rule.

Table-driven: each setting of topology.settings has a good value that passes and a bad value whose line names it;
a setting the table lacks fails `test_every_setting_has_a_case`, so a new variable cannot go unchecked."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from topology import settings
from topology.stacks import DEFAULT_PORTS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SLO = str(ROOT / "suites" / "failover" / "slo.yaml")

# name -> (a good value, a bad value, part of the rule the bad one must name)
CASES: dict[str, tuple[str, str, str]] = {
    "DPG_NETWORK": ("seed-net", "bad name!", "a Docker network name"),
    "DPG_SUBNET": ("172.26.0.0/16", "172.26.0.0/28", "/24 or larger"),
    "DPG_TTL": ("30", "5", "must be >= 20"),
    "DPG_LOOP_WAIT": ("2", "0", "must be >= 1"),
    "DPG_RETRY_TIMEOUT": ("4", "2", "must be >= 3"),
    "DPG_SYNCHRONOUS_MODE": ("true", "yes", "true or false"),
    "DPG_SYNCHRONOUS_MODE_STRICT": ("false", "1", "true or false"),
    "DPG_FAILSAFE_MODE": ("true", "on", "true or false"),
    "DPG_PRIMARY_START_TIMEOUT": ("0", "-1", "must be >= 0"),
    "DPG_MAXIMUM_LAG_ON_FAILOVER": ("1048576", "1MB", "must be an integer"),
    "DPG_SWITCH_WAL_ON_PROMOTE": ("false", "no", "true or false"),
    "DPG_STOP_LINGER_S": ("0.5", "-1", "must be >= 0"),
    "DPG_FAST_LEADER_STOP": ("true", "fast", "true or false"),
    "DPG_BEFORE_STOP_WAIT_S": ("3", "x", "must be a number"),
    "DPG_MEMBER_PROBE_TIMEOUT_MS": ("500", "50", "must be >= 100"),
    "DPG_POSTMASTER_WATCH": ("false", "off", "true or false"),
    "DPG_RESTORE_MISS_TTL_MS": ("0", "-5", "must be >= 0"),
    "DPG_ETCD_HOSTS": ("172.25.0.5:2379,172.25.0.6:2379,172.25.0.7:2379", "etcd-1", "host:port"),
    "DPG_RESTORE_TIMEOUT_S": ("5", "-1", "must be >= 0"),
    "DPG_RESTORE_DOWN_TTL_MS": ("10000", "x", "must be an integer"),
    "DPG_WAL_SEGSIZE_MB": ("16", "3", "power of 2"),
    "DPG_SHARED_BUFFERS": ("128MB", "lots", "PostgreSQL size"),
    "DPG_VECTOR_SHARED_BUFFERS": ("256MB", "12 MB", "PostgreSQL size"),
    "DPG_PATRONI_LOG_LEVEL": ("DEBUG", "loud", "one of DEBUG"),
    "DPG_HAPROXY_RW_CHECK": ("/health", "health", "Patroni endpoint path"),
    "DPG_HAPROXY_INTER": ("2s", "fast", "HAProxy time"),
    "DPG_HAPROXY_FASTINTER": ("100ms", "100 ms", "HAProxy time"),
    "DPG_HAPROXY_DOWNINTER": ("1s", "-1s", "HAProxy time"),
    "DPG_HAPROXY_FALL": ("3", "0", "must be >= 1"),
    "DPG_HAPROXY_RISE": ("2", "0", "must be >= 1"),
    "DPG_HAPROXY_RETRIES": ("3", "-1", "must be >= 0"),
    "DPG_HAPROXY_TIMEOUT_CONNECT": ("2s", "2 s", "HAProxy time"),
    "DPG_HAPROXY_TIMEOUT_CHECK": ("1s", "soon", "HAProxy time"),
    "DPG_CITUS_IMAGE": ("citusdata/citus:13.0.3", " ", "must not be empty"),
    "DPG_GRAFANA_IMAGE": ("grafana/grafana:11.3.0", "", "must not be empty"),
    "DPG_TOXIPROXY_IMAGE": ("ghcr.io/shopify/toxiproxy:2.12.0", "", "must not be empty"),
    "DPG_DB_PASSWORD": ("pw", "", "must not be empty"),
    "DPG_RO_PASSWORD": ("pw", "", "must not be empty"),
    "DPG_SUPERUSER_PASSWORD": ("pw", "", "must not be empty"),
    "DPG_TIMEOUTS": ('{"failover": 60}', "failover=60", "JSON object"),
    "DPG_TIMEOUT_MULTIPLIER": ("2", "0", "must be > 0"),
    "DPG_SLO_FILE": (SLO, "/nonexistent/slo.yaml", "existing file"),
    "DPG_KEEP_TOPOLOGY": ("1", "yes", "one of 0, 1"),
    "DPG_CITUS_DR_SABOTAGE": ("later-point", "all", "one of later-point"),
    "DPG_MAX_REPAIRS": ("0", "many", "must be an integer"),
    "DPG_SESSION_BUDGET_S": ("3600", "-1", "must be >= 0"),
    "DPG_REPORT_DIR": ("/tmp/out", "", "must not be empty"),
    "DPG_PROBE_RETRY_CAP_MS": ("20", "0", "must be > 0"),
    "DPG_HARNESS_NICE": ("0", "20", "must be <= 19"),
    "DPG_TARGET": (SLO, "/nonexistent/inventory.yml", "existing file"),
    "DPG_TOXIPROXY_API": ("http://127.0.0.1:8474", "127.0.0.1:8474", "http(s) URL"),
    "DPG_FAULT_JOURNAL": ("/tmp/j.jsonl", "", "must not be empty"),
    "DPG_BACKUP_RETENTION_FULL": ("2", "0", "must be >= 1"),
    "DPG_BACKUP_RETENTION_DIFF": ("3", "0", "must be >= 1"),
    "DPG_BOOTSTRAP_METHOD": ("pgbackrest", "basebackup", "one of initdb"),
    "DPG_PGBACKREST_REPO_HOST": ("", None, ""),  # empty turns archiving off: every value is valid
    "DPG_TRAEFIK_DYNAMIC_DIR": (str(ROOT / "compose"), "/nonexistent/dir", "existing directory"),
    "DPG_PROMETHEUS_RULES_DIR": (str(ROOT / "compose"), "/nonexistent/dir", "existing directory"),
    "DPG_VECTOR_MIN_RECALL": ("0.95", "high", "must be a number"),
    "DPG_CACHE_MAX_READ_MS": ("50", "0", "must be > 0"),
    "DPG_RUN_ID": ("ci-42", "ci 42", "letters, digits"),
    "DPG_HOSTS": ("3", "0", "must be >= 1"),
    "DPG_LOAD_TARGET": ("haproxy", "", "must not be empty"),
    "DPG_LOAD_LOG": ("/tmp/l.csv", "", "must not be empty"),
    "DPG_LOAD_VECTOR_TARGET": ("vector", "", "must not be empty"),
    "DPG_LOAD_STATEMENT_TIMEOUT_MS": ("5000", "0", "must be >= 1"),
    "DPG_LOAD_VECTOR_ROWS": ("10000", "ten", "must be an integer"),
    "DPG_FAULTPROXY_API": ("http://127.0.0.1:8474", "127.0.0.1:8474", "http(s) URL"),
    "DPG_FAULTPROXY_UPSTREAM": ("echo:7777", "echo", "host:port"),
    "DPG_FAULTPROXY_PORT_BASE": ("25000", "0", "must be >= 1"),
    "DPG_LOAD_FRACTION": ("0.5", "0", "must be > 0"),
    "DPG_ELLE_REPO": (str(ROOT), "/nonexistent/elle", "existing directory"),
    **{env: (str(20000 + i), "70000", "must be <= 65535") for i, env in enumerate(DEFAULT_PORTS)},
}


def test_every_setting_has_a_case():
    assert sorted(settings.table()) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_good_value_passes_and_a_bad_one_is_one_line_naming_it(name):
    good, bad, rule = CASES[name]
    assert settings.problems({name: good}) == []
    if bad is None:
        return
    found = settings.problems({name: bad})
    assert len(found) == 1, found
    assert found[0].startswith(name) and rule in found[0], found


def test_patroni_timing_rule_and_port_clashes():
    assert settings.problems({"DPG_TTL": "20", "DPG_RETRY_TIMEOUT": "9"}) == []  # 1 + 2 x 9 <= 20
    assert settings.problems({"DPG_TTL": "20", "DPG_RETRY_TIMEOUT": "10"}) == [
        "DPG_LOOP_WAIT=1 + 2 x DPG_RETRY_TIMEOUT=10 > DPG_TTL=20: Patroni needs loop_wait + 2 x retry_timeout <= ttl"
    ]
    assert settings.problems({"DPG_TTL": "5"}) == ["DPG_TTL='5': must be >= 20"]  # one mistake, one line
    assert settings.problems({"DPG_PORT_REDIS": "5000"}) == [
        "DPG_PORT_REDIS=5000: the same port as DPG_PORT_HAPROXY_RW"
    ]


def test_typos_and_families():
    assert settings.problems({"DPG_TTTL": "30"}) == ["DPG_TTTL: not a setting of dpg-chaos (did you mean DPG_TTL?)"]
    assert settings.problems({"DPG_SLO_SWITCHOVER_HAPROXY": "2500", "DPG_LIMIT_X": "ttl+500"}) == []
    assert settings.problems({"DPG_SLO_HARD_KILL": "forever"})[0].startswith("DPG_SLO_HARD_KILL='forever': must be")
    assert settings.problems({"DPG_PORT_NOTHING": "1"}) == ["DPG_PORT_NOTHING: not a published port of any stack"]
    assert settings.problems({"DPG_ARCHIVE_TIMEOUT": "60"}) == []  # compose hands it to the image as it is
    # read inside the image only: setting it on the host changes nothing, and says so
    assert settings.problems({"DPG_PGBACKREST_PROCESS_MAX": "2"})[0].startswith("DPG_PGBACKREST_PROCESS_MAX: not a")


def test_a_bad_setting_answers_in_under_a_second_with_one_line_and_exit_2():
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "topology", "up", "patroni"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DPG_TTL": "5"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert time.monotonic() - started < 1.5  # the interpreter's own start included
    assert run.returncode == 2
    assert run.stderr.strip() == "topology: bad setting DPG_TTL='5': must be >= 20"
