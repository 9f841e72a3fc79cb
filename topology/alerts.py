"""Alert assertions around faults: the matching alert must fire within its bound and resolve after heal.

    from topology.alerts import expect_alert

    # 1. expect_alert enters the fault itself and heals it on exit
    with expect_alert("RedisDown", {"job": "redis"}, fault=Stopped("dpg-redis")) as alert:
        ...                      # runs with the fault active AND the alert firing (alert.fired_after_s is set)
    # here the fault is healed, the alert resolved, both latencies recorded

    # 2. around a fault you enter yourself (an experiment, nested faults): call wait_firing() inside it
    with expect_alert("EtcdMemberDown", {"instance": "etcd-2:2379"}) as alert:
        with Stopped("dpg-etcd-2"):
            alert.injected()     # optional: start the fire clock now (default: when expect_alert was entered)
            alert.wait_firing()
    # healed when the inner block ended; expect_alert's exit waits for the resolution, clocked from there

    # 3. several alerts of one fault, polled together (one clock; a fault form exists too)
    with expect_alerts(("PatroniNoLeader", None), ("HAProxyBackendNoServer", {"proxy": "primary"})) as watches:
        with Paused("dpg-patroni-1"):
            wait_firing(*watches)

Before the fault (steady state) it checks that Prometheus has an alerting rule of that name, that every scrape
target of the running stacks is present and up (a missing target is itself a failure) and that the alert is
not already firing. Failures are AssertionErrors: AlertNotLoaded, TargetsNotUp, AlertAlreadyFiring,
AlertNotFired, AlertNotResolved; so a renamed, deleted or broken rule turns the fault test red.

`labels` is a subset match on the alert's labels. `within` / `resolve_within` (seconds) default to the bounds
derived in compose/config/prometheus/alert-bounds.yml, times DPG_TIMEOUT_MULTIPLIER. Each watch attaches its
timings to Allure and appends an `alert` row (fired_after_s, resolved_after_s, bounds) to measurements.jsonl.
Needs the monitoring stack (the `monitoring_stack` fixture) on top of the stacks the fault touches.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import allure
import docker
import requests
import yaml

from . import prometheus
from .errors import TopologyError
from .stacks import COMPOSE_DIR
from .timeouts import multiplier
from .waiting import WaitTimeout, wait_for

BOUNDS_FILE = COMPOSE_DIR / "config" / "prometheus" / "alert-bounds.yml"
#: how often the alerts API is polled (the latency resolution of the measurements)
POLL_S = 0.5

#: The scrape targets (job, instance) each running stack must have while the monitoring stack runs.
EXPECTED_TARGETS: dict[str, frozenset[tuple[str, str]]] = {
    "patroni": frozenset(
        {("patroni", f"patroni-{i}:8008") for i in (1, 2, 3)}
        | {("etcd", f"etcd-{i}:2379") for i in (1, 2, 3)}
        | {("haproxy", "haproxy:7000")}
    ),
    "traefik": frozenset(
        {("traefik", "traefik:8081")}
        | {("traefik-tcp-routers", r) for r in ("patroni-primary", "patroni-replicas", "citus-coordinator")}
    ),
    "monitoring": frozenset(
        {
            ("prometheus", "localhost:9090"),
            ("postgres", "postgres-exporter-patroni:9187"),
            ("postgres", "postgres-exporter-vector:9187"),
            ("redis", "redis-exporter:9121"),
            ("blackbox", "blackbox-exporter:9115"),
        }
    ),
    "citus": frozenset({("citus", "citus-coordinator")}),
}


class AlertNotLoaded(AssertionError):
    """Prometheus has no alerting rule of that name (renamed, deleted, or the rule file failed to load)."""


class TargetsNotUp(AssertionError):
    """A scrape target of a running stack is missing or down."""


class AlertAlreadyFiring(AssertionError):
    """The alert fires before the fault: the steady state is broken, the test could prove nothing."""


class AlertNotFired(AssertionError):
    """The fault was active but the alert did not fire within its bound."""


class AlertNotResolved(AssertionError):
    """The fault was healed but the alert still fires after its bound."""


@dataclass(frozen=True)
class Bounds:
    fire_within: float
    resolve_within: float
    derivation: str


def bounds(alert: str) -> Bounds:
    """fire/resolve bounds of one alert from alert-bounds.yml (derived there), times the timeout multiplier."""
    doc = yaml.safe_load(BOUNDS_FILE.read_text())
    spec = doc["alerts"].get(alert)
    if spec is None:
        raise KeyError(f"{alert}: no bounds in {BOUNDS_FILE.name}")
    scrape, evaluation, margin, mult = doc["scrape_interval"], doc["evaluation_interval"], doc["margin"], multiplier()
    fire = scrape + spec["detect"] + spec["for"] + evaluation + margin
    resolve = spec["recover"] + scrape + evaluation + margin
    how = (
        f"fire = scrape {scrape} + detect {spec['detect']} + for {spec['for']} + eval {evaluation} + margin "
        f"{margin} = {fire} s; resolve = recover {spec['recover']} + scrape {scrape} + eval {evaluation} + "
        f"margin {margin} = {resolve} s; x{mult:g}"
    )
    return Bounds(fire * mult, resolve * mult, how)


def select(alerts: list[dict], name: str, labels: dict[str, str] | None, state: str | None = "firing") -> list[dict]:
    """The alerts named `name` whose labels include `labels`, in `state` (None = pending or firing)."""
    want = labels or {}
    return [
        a
        for a in alerts
        if a["labels"].get("alertname") == name
        and (state is None or a["state"] == state)
        and all(a["labels"].get(k) == v for k, v in want.items())
    ]


def matching(name: str, labels: dict[str, str] | None, state: str | None = "firing") -> list[dict]:
    """Active alerts named `name` whose labels include `labels`, in `state` (None = pending or firing)."""
    return select(prometheus.alerts(), name, labels, state)


def expected_targets(client: docker.DockerClient) -> set[tuple[str, str]]:
    from .health import running_stacks

    running = set(running_stacks(client))
    if "monitoring" not in running:
        return set()
    return set().union(*(EXPECTED_TARGETS[s] for s in running if s in EXPECTED_TARGETS))


def target_problems(expected: set[tuple[str, str]]) -> list[str]:
    """Each expected (job, instance) that Prometheus does not scrape, or scrapes unsuccessfully."""
    seen = {(t["labels"].get("job"), t["labels"].get("instance")): t for t in prometheus.targets()}
    problems = []
    for job, instance in sorted(expected):
        t = seen.get((job, instance))
        if t is None:
            problems.append(f"target {job}/{instance} missing")
        elif t["health"] != "up":
            problems.append(f"target {job}/{instance} is {t['health']} ({t.get('lastError', '')[:80]})")
    return problems


@dataclass
class AlertWatch:
    """One alert expected to fire during a fault and to resolve after its heal."""

    name: str
    labels: dict[str, str]
    bounds: Bounds
    started: float = field(default_factory=time.monotonic)
    fired_after_s: float | None = None
    pending_after_s: float | None = None
    healed_at: float | None = None
    resolved_after_s: float | None = None
    seen: list[dict] = field(default_factory=list)

    @property
    def what(self) -> str:
        sel = ",".join(f"{k}={v}" for k, v in self.labels.items())
        return f"{self.name}{{{sel}}}" if sel else self.name

    def injected(self) -> None:
        """Start the fire clock now (call right after the fault is in place)."""
        self.started = time.monotonic()

    def healed(self) -> None:
        """Start the resolve clock now (default: when the block that healed the fault ended)."""
        self.healed_at = time.monotonic()

    def wait_firing(self) -> list[dict]:
        """Block until the alert fires (the fault must be active); AlertNotFired after `fire_within`."""
        wait_firing(self)
        return self.seen

    def wait_resolved(self) -> None:
        """Block until the alert no longer fires (the fault must be healed); AlertNotResolved after the bound."""
        wait_resolved(self)

    def record(self, scenario: str) -> dict[str, Any]:
        from topology import evidence

        row = {
            "alert": self.name,
            "labels": self.labels,
            "scenario": scenario,
            "fired_after_s": self.fired_after_s,
            "pending_after_s": self.pending_after_s,
            "resolved_after_s": self.resolved_after_s,
            "fire_within_s": self.bounds.fire_within,
            "resolve_within_s": self.bounds.resolve_within,
            "derivation": self.bounds.derivation,
            "firing": self.seen,
        }
        evidence.attach_json(f"alert {self.what}", row)
        evidence.record_measurement("alert", **{k: v for k, v in row.items() if k != "firing"})
        return row


def _poll(watches: list[AlertWatch], done, late, what: str) -> None:
    """One alerts-API read per round for every watch still open; `done(w, alerts, now)` closes a watch,
    `late(w, now)` says it ran out of time (then it raises). Bounded by the longest bound of the group."""
    open_ = [w for w in watches if not done(w, None, 0.0)]
    if not open_:
        return
    with allure.step(f"{', '.join(w.what for w in open_)} {what}"):
        while open_:
            now = time.monotonic()
            try:
                alerts = prometheus.alerts()
            except (TopologyError, requests.RequestException, ValueError):
                alerts = None  # Prometheus briefly unreachable: not yet, the clock runs
            if alerts is not None:
                open_ = [w for w in open_ if not done(w, alerts, now)]
            for w in open_:
                late(w, now)
            if open_:
                time.sleep(POLL_S)


def wait_firing(*watches: AlertWatch) -> None:
    """Wait until every watch's alert fires, each against its own bound from its own `started`."""

    def done(w: AlertWatch, alerts, now) -> bool:
        if w.fired_after_s is not None or alerts is None:
            return w.fired_after_s is not None
        found = select(alerts, w.name, w.labels, None)
        if found and w.pending_after_s is None:
            w.pending_after_s = round(now - w.started, 2)
        firing = [a for a in found if a["state"] == "firing"]
        if firing:
            w.seen, w.fired_after_s = firing, round(now - w.started, 2)
        return bool(firing)

    def late(w: AlertWatch, now: float) -> None:
        if now - w.started > w.bounds.fire_within:
            raise AlertNotFired(
                f"{w.what} did not fire within {w.bounds.fire_within:.0f} s of the fault "
                f"({w.bounds.derivation}); pending seen after {w.pending_after_s} s"
            )

    _poll(list(watches), done, late, "firing")


def wait_resolved(*watches: AlertWatch) -> None:
    """Wait until no watch's alert fires any more, each against its own bound from its heal."""
    now = time.monotonic()
    for w in watches:
        w.healed_at = w.healed_at or now

    def done(w: AlertWatch, alerts, now) -> bool:
        if w.resolved_after_s is not None or alerts is None:
            return w.resolved_after_s is not None
        if not select(alerts, w.name, w.labels, "firing"):
            w.resolved_after_s = round(now - w.healed_at, 2)
        return w.resolved_after_s is not None

    def late(w: AlertWatch, now: float) -> None:
        if now - w.healed_at > w.bounds.resolve_within:
            raise AlertNotResolved(
                f"{w.what} still fires {w.bounds.resolve_within:.0f} s after heal "
                f"({w.bounds.derivation}): {matching(w.name, w.labels)}"
            )

    _poll(list(watches), done, late, "resolved")


def check_steady_state(
    name: str, labels: dict[str, str] | None, *, within: float, client: docker.DockerClient | None = None
) -> None:
    """The rule is loaded, every target of the running stacks is up, and the alert is not firing (waits up to
    `within` for a previous fault's alert to resolve)."""
    if name not in prometheus.rule_names():
        raise AlertNotLoaded(f"Prometheus has no alerting rule {name!r}; loaded: {sorted(prometheus.rule_names())}")
    if client is None:
        from .images import docker_client

        client = docker_client()
    problems = target_problems(expected_targets(client))
    if problems:
        raise TargetsNotUp("; ".join(problems))
    try:
        wait_for(lambda: not matching(name, labels, "firing"), within=within, what=f"{name} not firing", every=POLL_S)
    except WaitTimeout:
        raise AlertAlreadyFiring(f"{name} fires before the fault: {matching(name, labels)}") from None


@contextmanager
def expect_alerts(
    *specs: tuple[str, dict[str, str] | None],
    fault=None,
    within: float | None = None,
    resolve_within: float | None = None,
    scenario: str = "",
    client: docker.DockerClient | None = None,
) -> Iterator[list[AlertWatch]]:
    """Several alerts around one fault, polled together (one clock, one API read per round):

        with expect_alerts(("PatroniNoLeader", None), ("HAProxyBackendNoServer", {"proxy": "primary"}),
                           fault=Paused("dpg-patroni-1")) as (no_leader, no_server):
            ...
    Manual form (no `fault`): call `wait_firing(*watches)` inside your fault; the exit waits for all to resolve.
    """
    watches = []
    for name, labels in specs:
        b = bounds(name)
        if within is not None or resolve_within is not None:
            b = Bounds(
                within if within is not None else b.fire_within,
                resolve_within if resolve_within is not None else b.resolve_within,
                f"overridden; default: {b.derivation}",
            )
        watches.append(AlertWatch(name, dict(labels or {}), b))
    with allure.step(f"steady state: {', '.join(w.name for w in watches)} loaded, targets up, not firing"):
        for w in watches:
            check_steady_state(w.name, w.labels, within=w.bounds.resolve_within, client=client)
    try:
        if fault is None:
            now = time.monotonic()
            for w in watches:
                w.started = now
            yield watches
            never = [w.what for w in watches if w.fired_after_s is None]
            if never:
                raise AlertNotFired(f"{', '.join(never)}: wait_firing() was never called while the fault was active")
        else:
            with fault:
                now = time.monotonic()
                for w in watches:
                    w.started = now
                wait_firing(*watches)
                yield watches
        wait_resolved(*watches)
    finally:
        for w in watches:
            w.record(scenario or (fault.describe() if fault is not None else ""))


@contextmanager
def expect_alert(
    name: str,
    labels: dict[str, str] | None = None,
    *,
    fault=None,
    within: float | None = None,
    resolve_within: float | None = None,
    scenario: str = "",
    client: docker.DockerClient | None = None,
) -> Iterator[AlertWatch]:
    """See the module docstring. `fault`: a chaos.faults Fault entered here (clock starts once injected)."""
    with expect_alerts(
        (name, labels), fault=fault, within=within, resolve_within=resolve_within, scenario=scenario, client=client
    ) as (watch,):
        yield watch
