"""Every DPG_* setting, parsed and checked on the host in one place, before anything starts.

`python -m topology ...`, pytest's start-up (topology.pytest_target) and `.ci/run` (`python -m topology settings`)
all call `check()`: a bad value is one line naming the variable and the rule, exit status 2, nothing started. Before
this, `DPG_TTL=5 python -m topology up` started the stack and waited 123 s for a leader Patroni had refused to
elect (the reason was only in the container's log).

The table is also the reference docs/configuration.md is checked against (suites/unit/test_settings.py).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import TopologyError

Check = Callable[[str], str | None]  # value -> the rule it breaks (None: fine)


def _int(low: int | None = None, high: int | None = None) -> Check:
    def check(v: str) -> str | None:
        try:
            n = int(v)
        except ValueError:
            return "must be an integer"
        if low is not None and n < low:
            return f"must be >= {low}"
        if high is not None and n > high:
            return f"must be <= {high}"
        return None

    return check


def _number(low: float = 0.0, *, strict: bool = False) -> Check:
    def check(v: str) -> str | None:
        try:
            n = float(v)
        except ValueError:
            return "must be a number"
        if n < low or (strict and n == low):
            return f"must be {'>' if strict else '>='} {low:g}"
        return None

    return check


def _bool(v: str) -> str | None:
    return None if v.lower() in ("true", "false") else "must be true or false"


def _choice(*options: str) -> Check:
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


def _regex(pattern: str, what: str) -> Check:
    rx = re.compile(pattern)
    return lambda v: None if rx.fullmatch(v) else f"must be {what}"


def _nonempty(v: str) -> str | None:
    return None if v.strip() else "must not be empty"


def _pow2_mb(v: str) -> str | None:
    try:
        n = int(v)
    except ValueError:
        return "must be an integer number of MB"
    return None if 1 <= n <= 1024 and n & (n - 1) == 0 else "must be a power of 2 from 1 to 1024 (initdb --wal-segsize)"


def _json_object(v: str) -> str | None:
    try:
        return None if isinstance(json.loads(v), dict) else "must be a JSON object"
    except ValueError:
        return 'must be a JSON object, e.g. {"failover": 60}'


def _file(v: str) -> str | None:
    return None if Path(v).expanduser().is_file() else "must name an existing file"


def _dir(v: str) -> str | None:
    return None if Path(v).expanduser().is_dir() else "must name an existing directory"


def _subnet(v: str) -> str | None:
    import ipaddress

    try:
        net = ipaddress.ip_network(v)
    except ValueError:
        return "must be a network like 172.25.0.0/16"
    return None if net.version == 4 and net.prefixlen <= 24 else "must be an IPv4 network of /24 or larger"


HAPROXY_TIME = r"[0-9]+(us|ms|s|m|h|d)?"
PG_SIZE = r"[0-9]+(kB|MB|GB|TB)?"


@dataclass(frozen=True)
class Setting:
    name: str
    check: Check
    what: str  # one line for docs/configuration.md


def _port_settings() -> list[Setting]:
    from .stacks import DEFAULT_PORTS

    return [Setting(env, _int(1, 65535), f"published port (default {p})") for env, p in DEFAULT_PORTS.items()]


SETTINGS: tuple[Setting, ...] = (
    Setting("DPG_NETWORK", _regex(r"[A-Za-z0-9][A-Za-z0-9_.-]*", "a Docker network name"), "the shared network"),
    Setting("DPG_SUBNET", _subnet, "its subnet (fixed host numbers .2 ... .100)"),
    Setting("DPG_TTL", _int(20), "Patroni ttl (s)"),
    Setting("DPG_LOOP_WAIT", _int(1), "Patroni loop_wait (s)"),
    Setting("DPG_RETRY_TIMEOUT", _int(3), "Patroni retry_timeout (s)"),
    Setting("DPG_SYNCHRONOUS_MODE", _bool, "Patroni synchronous_mode at bootstrap"),
    Setting("DPG_SYNCHRONOUS_MODE_STRICT", _bool, "Patroni synchronous_mode_strict at bootstrap"),
    Setting("DPG_FAILSAFE_MODE", _bool, "Patroni failsafe_mode at bootstrap"),
    Setting("DPG_PRIMARY_START_TIMEOUT", _int(0), "Patroni primary_start_timeout (s)"),
    Setting(
        "DPG_ETCD_HOSTS",
        _regex(r"[A-Za-z0-9.-]+:[0-9]+(,[A-Za-z0-9.-]+:[0-9]+)*", "host:port[,host:port...]"),
        "the etcd members Patroni starts from (names or addresses)",
    ),
    Setting("DPG_MAXIMUM_LAG_ON_FAILOVER", _int(0), "Patroni maximum_lag_on_failover (bytes)"),
    Setting("DPG_SWITCH_WAL_ON_PROMOTE", _bool, "the new leader closes its WAL segment at promotion"),
    Setting("DPG_STOP_LINGER_S", _number(0), "a stopped Patroni container keeps its address this long"),
    Setting("DPG_FAST_LEADER_STOP", _bool, "before_stop hook does the leader's fast shutdown"),
    Setting("DPG_BEFORE_STOP_WAIT_S", _number(0), "... and waits for it at most this long"),
    Setting("DPG_MEMBER_PROBE_TIMEOUT_MS", _int(100, 10_000), "opt-in: the leader race's member probe (ms)"),
    Setting("DPG_POSTMASTER_WATCH", _bool, "wake Patroni the moment its postmaster exits"),
    Setting("DPG_RESTORE_MISS_TTL_MS", _int(0), "restore_command believes 'not in the archive' this long"),
    Setting("DPG_RESTORE_TIMEOUT_S", _int(0, 600), "restore_command gives one archive-get this long (0 = unbounded)"),
    Setting("DPG_RESTORE_DOWN_TTL_MS", _int(0), "restore_command believes a silent repository down this long"),
    Setting("DPG_WAL_SEGSIZE_MB", _pow2_mb, "WAL segment size of a new cluster"),
    Setting("DPG_SHARED_BUFFERS", _regex(PG_SIZE, "a PostgreSQL size such as 64MB"), "Patroni nodes' shared_buffers"),
    Setting("DPG_VECTOR_SHARED_BUFFERS", _regex(PG_SIZE, "a PostgreSQL size such as 128MB"), "vector DB's"),
    Setting("DPG_PATRONI_LOG_LEVEL", _choice("DEBUG", "INFO", "WARNING", "ERROR"), "Patroni's log level"),
    Setting(
        "DPG_HAPROXY_RW_CHECK", _regex(r"/[A-Za-z0-9_/-]*", "a Patroni endpoint path such as /primary"), "RW check"
    ),
    Setting("DPG_HAPROXY_INTER", _regex(HAPROXY_TIME, "an HAProxy time such as 250ms"), "HAProxy check interval"),
    Setting("DPG_HAPROXY_FASTINTER", _regex(HAPROXY_TIME, "an HAProxy time such as 100ms"), "... while changing"),
    Setting("DPG_HAPROXY_DOWNINTER", _regex(HAPROXY_TIME, "an HAProxy time such as 100ms"), "... while down"),
    Setting("DPG_HAPROXY_FALL", _int(1), "failed checks before DOWN"),
    Setting("DPG_HAPROXY_RISE", _int(1), "passed checks before UP"),
    Setting("DPG_HAPROXY_RETRIES", _int(0), "HAProxy connect retries"),
    Setting("DPG_HAPROXY_TIMEOUT_CONNECT", _regex(HAPROXY_TIME, "an HAProxy time such as 1s"), "timeout connect"),
    Setting("DPG_HAPROXY_TIMEOUT_CHECK", _regex(HAPROXY_TIME, "an HAProxy time such as 500ms"), "timeout check"),
    Setting("DPG_CITUS_IMAGE", _nonempty, "Citus image (cannot be built here)"),
    Setting("DPG_GRAFANA_IMAGE", _nonempty, "Grafana image (cannot be built here)"),
    Setting("DPG_TOXIPROXY_IMAGE", _nonempty, "official Toxiproxy image (else the project's fault proxy)"),
    Setting("DPG_DB_PASSWORD", _nonempty, "app login's password (test value by default)"),
    Setting("DPG_RO_PASSWORD", _nonempty, "readonly login's password"),
    Setting("DPG_SUPERUSER_PASSWORD", _nonempty, "postgres superuser's password"),
    Setting("DPG_TIMEOUTS", _json_object, "JSON overrides of named timeouts"),
    Setting("DPG_TIMEOUT_MULTIPLIER", _number(0, strict=True), "scales every named timeout"),
    Setting("DPG_SLO_FILE", _file, "the SLO file"),
    Setting("DPG_KEEP_TOPOLOGY", _choice("0", "1"), "1: keep the stacks pytest started"),
    Setting("DPG_CITUS_DR_SABOTAGE", _choice("later-point", "skip-worker-2"), "make drill 10 restore wrongly"),
    Setting("DPG_MAX_REPAIRS", _int(0), "repairs of a broken stack per run"),
    Setting("DPG_SESSION_BUDGET_S", _int(0), "a run's time budget (s)"),
    Setting("DPG_REPORT_DIR", _nonempty, "where measurements are written"),
    Setting("DPG_PROBE_RETRY_CAP_MS", _number(0, strict=True), "probe back-off cap (ms)"),
    Setting("DPG_HARNESS_NICE", _int(0, 19), "pytest lowers its own CPU priority by this"),
    Setting("DPG_TARGET", _file, "an inventory: test a deployment the suite did not start (docs/target.md)"),
    Setting("DPG_TOXIPROXY_API", _regex(r"https?://\S+", "an http(s) URL"), "the fault proxy's API"),
    Setting("DPG_FAULT_JOURNAL", _nonempty, "where the fault journal is written"),
    Setting("DPG_BACKUP_RETENTION_FULL", _int(1), "pgBackRest full backups kept"),
    Setting("DPG_BACKUP_RETENTION_DIFF", _int(1), "pgBackRest differential backups kept"),
    Setting("DPG_BOOTSTRAP_METHOD", _choice("initdb", "pgbackrest"), "how a new Patroni cluster starts"),
    Setting("DPG_PGBACKREST_REPO_HOST", lambda v: None, "repository host (empty: no archiving)"),
    Setting("DPG_TRAEFIK_DYNAMIC_DIR", _dir, "Traefik's watched dynamic-config directory"),
    Setting("DPG_PROMETHEUS_RULES_DIR", _dir, "Prometheus rule files"),
    Setting("DPG_VECTOR_MIN_RECALL", _number(0), "recall@10 floor of the vector suite"),
    Setting("DPG_CACHE_MAX_READ_MS", _number(0, strict=True), "cache-aside read bound (ms)"),
    Setting("DPG_RUN_ID", _regex(r"[A-Za-z0-9_.-]+", "letters, digits, _ . -"), "the run label put on what it creates"),
    Setting("DPG_HOSTS", _int(1, 9), "multi-host mode: number of Docker hosts"),
    Setting("DPG_LOAD_TARGET", _nonempty, "Locust's entry point (set by the harness)"),
    Setting("DPG_LOAD_LOG", _nonempty, "Locust's per-request log (set by the harness)"),
    Setting("DPG_LOAD_VECTOR_TARGET", _nonempty, "Locust's vector entry point (set by the harness)"),
    Setting("DPG_LOAD_STATEMENT_TIMEOUT_MS", _int(1), "a Locust user's statement timeout (ms)"),
    Setting("DPG_LOAD_VECTOR_ROWS", _int(1), "vector table size for the vector Locust user"),
    Setting("DPG_FAULTPROXY_API", _regex(r"https?://\S+", "an http(s) URL"), "fault-proxy conformance: its API"),
    Setting("DPG_FAULTPROXY_UPSTREAM", _regex(r"[^\s:]+:[0-9]{1,5}", "host:port"), "... and its upstream"),
    Setting("DPG_FAULTPROXY_PORT_BASE", _int(1, 65525), "... and the first proxy port"),
    Setting("DPG_LOAD_FRACTION", _number(0, strict=True), "failover experiments under open-loop load (0.5 = 50 %)"),
    Setting("DPG_ELLE_REPO", _dir, "a checkout of jepsen-io/elle: compare the checker with its published histories"),
)

#: families checked by the module that reads them (SLO bounds and limits are formulas over ttl/probe and ms)
FAMILIES = ("DPG_PORT_", "DPG_SLO_", "DPG_LIMIT_")


def passed_through() -> set[str]:
    """Variables compose hands to the images without the harness reading them (pgBackRest tuning and the like):
    whatever compose/*.yml interpolates and the table above does not describe."""
    from .stacks import COMPOSE_DIR

    names = set()
    for f in COMPOSE_DIR.glob("*.yml"):
        names |= set(re.findall(r"\$\{(DPG_[A-Z0-9_]+)", f.read_text()))
    return names


def table() -> dict[str, Setting]:
    return {s.name: s for s in (*SETTINGS, *_port_settings())}


def problems(env: Mapping[str, str] | None = None) -> list[str]:
    """Every bad setting in `env` (default: the process environment), one line each."""
    env = os.environ if env is None else env
    known = table()
    out = []
    for name, value in sorted(env.items()):
        if not name.startswith("DPG_"):
            continue
        if name in known:
            rule = known[name].check(value)
            if rule:
                out.append(f"{name}={value!r}: {rule}")
        elif not name.startswith(FAMILIES) and name not in passed_through():
            import difflib

            near = difflib.get_close_matches(name, list(known), n=1)
            out.append(f"{name}: not a setting of dpg-chaos" + (f" (did you mean {near[0]}?)" if near else ""))
    timing = ("DPG_TTL", "DPG_LOOP_WAIT", "DPG_RETRY_TIMEOUT")
    if not any(line.startswith(timing) for line in out):  # one line per mistake: a bad ttl is not also a bad sum
        out += _patroni_timing(env)
    out += _port_clashes(env, known) + _families(env)
    return out


def _patroni_timing(env: Mapping[str, str]) -> list[str]:
    """Patroni's own rule: loop_wait + 2 * retry_timeout <= ttl (it refuses to start otherwise)."""
    try:
        ttl, loop, retry = (int(env.get(k, d)) for k, d in (("DPG_TTL", "20"), ("DPG_LOOP_WAIT", "1"),
                                                             ("DPG_RETRY_TIMEOUT", "3")))  # fmt: skip
    except ValueError:
        return []  # the integer rule above already names it
    if loop + 2 * retry > ttl:
        return [f"DPG_LOOP_WAIT={loop} + 2 x DPG_RETRY_TIMEOUT={retry} > DPG_TTL={ttl}: Patroni needs loop_wait + "
                "2 x retry_timeout <= ttl"]  # fmt: skip
    return []


def _port_clashes(env: Mapping[str, str], known: dict[str, Setting]) -> list[str]:
    from .stacks import DEFAULT_PORTS

    used: dict[int, str] = {}
    out = []
    for name, default in DEFAULT_PORTS.items():
        try:
            port = int(env.get(name, default))
        except ValueError:
            continue
        if port in used:
            out.append(f"{name}={port}: the same port as {used[port]}")
        used.setdefault(port, name)
    return out


def _families(env: Mapping[str, str]) -> list[str]:
    out = []
    for name, value in env.items():
        if name.startswith(("DPG_SLO_", "DPG_LIMIT_")) and name != "DPG_SLO_FILE":
            if not re.fullmatch(r"[0-9.+\-a-z ]+", value) or not re.search(r"[0-9]|ttl|probe", value):
                out.append(f"{name}={value!r}: must be ms or a sum of ttl, probe and ms (e.g. ttl+probe+1500)")
        elif name.startswith("DPG_PORT_") and name not in table():
            out.append(f"{name}: not a published port of any stack")
    return out


def check() -> None:
    """Raise one TopologyError listing every bad setting (the CLIs print it and exit 2)."""
    found = problems()
    if len(found) == 1:
        raise TopologyError(f"bad setting {found[0]}")
    if found:
        raise TopologyError("bad settings:\n  " + "\n  ".join(found))
