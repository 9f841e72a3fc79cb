"""Named timeouts (CloudNativePG style): every wait says what it waits for and for how long.

Override any of them with DPG_TIMEOUTS='{"failover": 40}'; in CI (CI=true) all are multiplied by
DPG_TIMEOUT_MULTIPLIER (default 2) because shared CI machines are noisier (Patroni's timeout_multiplier).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, replace

from .errors import TopologyError, positive_number_from_env


@dataclass(frozen=True)
class Timeouts:
    stack_up: float = 120.0  # containers of a stack running and their health gate green
    cluster_ready: float = 90.0  # 1 leader + 2 streaming replicas with zero lag
    settle: float = 15.0  # a healthy stack's snapshot converges (Patroni reports replica lag from the
    # positions members last wrote to etcd: a write between loops shows as lag)
    failover: float = 45.0  # a new leader elected (hard faults are bounded by Patroni's ttl=20 s)
    switchover: float = 20.0
    rejoin: float = 90.0  # old leader back as a streaming replica (pg_rewind included)
    router_follow: float = 15.0  # HAProxy/Traefik/PgBouncer route writes to the new leader
    statement: float = 3.0  # one probe statement
    backup: float = 300.0  # one pgBackRest command on the repository host (backup, verify, check)
    restore: float = 300.0  # a restore from the repository plus recovery to its target
    alert: float = 60.0  # Prometheus shows a change and an alert fires/resolves (scrape 5 s + for 5 s
    # + evaluation 5 s, plus the exporter's own timeout)
    repair_check: float = 30.0  # after a failed destructive test: a stack heals by itself, else it is recreated
    citus_recover: float = 60.0  # a Citus node back after heal: started, crash recovery, queries reach it


def _load() -> Timeouts:
    base = Timeouts()
    raw = os.environ.get("DPG_TIMEOUTS")
    if raw:
        try:
            overrides = json.loads(raw)
            names = {f.name for f in fields(Timeouts)}
            unknown = set(overrides) - names
            if unknown:
                raise TopologyError(f"DPG_TIMEOUTS: unknown timeout(s) {sorted(unknown)}; known: {sorted(names)}")
            base = replace(base, **{k: float(v) for k, v in overrides.items()})
        except (ValueError, TypeError) as exc:
            raise TopologyError(f"DPG_TIMEOUTS is not a JSON object of numbers: {exc}") from None
    mult = multiplier()
    return replace(base, **{f.name: getattr(base, f.name) * mult for f in fields(Timeouts)})


def multiplier() -> float:
    default = "2" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "1"
    return positive_number_from_env("DPG_TIMEOUT_MULTIPLIER", default)


TIMEOUTS = _load()
