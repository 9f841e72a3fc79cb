"""Patroni settings a failover number depends on, made true on the cluster for the length of one experiment.

The member-probe timeout is the one setting the harness owns: DPG_MEMBER_PROBE_TIMEOUT_MS is read by the SLO
bounds (`probe` in slo.yaml) and written into the cluster's dynamic config here, so the bound a test asserts and
the Patroni it measures cannot disagree (an env var on the containers would only act when they are recreated).
The image's Patroni reads the key (compose/images/postgres/Dockerfile); without it Patroni probes for its own 2 s.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import allure
import requests

from chaos.checkers.slo import STOCK_MEMBER_PROBE_MS, member_probe_timeout_ms, probe_variant
from chaos.faults import DynamicConfigChanged, PatroniAPI, published_api_urls
from topology.patroni import PROBE_KEY, PatroniCluster
from topology.timeouts import TIMEOUTS
from topology.waiting import wait_for


def probe_label(ms: int) -> str:
    return f"{ms} ms" + (" (Patroni's own)" if ms == STOCK_MEMBER_PROBE_MS else " (opt-in patch)")


def variant(config: dict[str, Any]) -> str:
    """The non-default settings of a dynamic config that change what a failover costs ('' for the defaults).

    Measurements carry it so a table never mixes e.g. synchronous-mode runs into the asynchronous ones."""
    from topology.inventory import current

    parts = []
    if current().kind == "multihost":  # a cluster spread over hosts is its own population
        parts.append(f"{len(current().hosts)} hosts")
    elif current().kind == "target":  # so is a deployment the suite did not start
        parts.append(f"target {current().name}")
    if config.get("synchronous_mode"):
        parts.append("synchronous_mode")
    if config.get("failsafe_mode"):
        parts.append("failsafe_mode")
    probe = config.get(PROBE_KEY)
    if probe is not None and probe != STOCK_MEMBER_PROBE_MS:
        parts.append(probe_variant(probe))
    return ", ".join(parts)


def _seen_by_every_node(value: int | None) -> bool:
    """Every node's REST API serves the config its last HA cycle loaded (GET /config reads the DCS cache)."""
    for url in published_api_urls().values():
        try:
            if requests.get(url + "/config", timeout=2).json().get(PROBE_KEY) != value:
                return False
        except (requests.RequestException, ValueError):
            return False
    return True


def _wait_loaded(value: int | None) -> None:
    wait_for(
        lambda: _seen_by_every_node(value),
        within=TIMEOUTS.cluster_ready,
        what=f"every Patroni node to load {PROBE_KEY}={value}",
        every=0.2,
    )
    # the HA cycle that loaded the config applies it (global_config.update) right after: one loop_wait covers it
    time.sleep(float(os.environ.get("DPG_LOOP_WAIT", "1")))


@contextlib.contextmanager
def member_probe_timeout(api: PatroniAPI | None = None) -> Iterator[int]:
    """Give the cluster this run's member-probe timeout; yields it in ms. A changed setting is restored on exit.

    With the default (Patroni's own 2 s) the key must be absent: a leftover of a killed run would otherwise make a
    stock run measure a patched Patroni without saying so."""
    api = api or PatroniAPI.published()
    ms = member_probe_timeout_ms()
    wanted = None if ms == STOCK_MEMBER_PROBE_MS else ms
    if _seen_by_every_node(wanted):
        yield ms
    elif wanted is None:
        api.request("PATCH", "/config", json={PROBE_KEY: None})  # a leftover of a killed run: removed for good
        _wait_loaded(None)
        yield ms
    else:
        with DynamicConfigChanged({PROBE_KEY: wanted}, api):
            _wait_loaded(wanted)
            yield ms


def hold_for_run(settings: contextlib.ExitStack, cluster: PatroniCluster) -> str:
    """An experiment's steady state: put this run's settings on the cluster until `settings` closes, show them
    on the Allure test, and return the run's variant for its measurement."""
    probe_ms = settings.enter_context(member_probe_timeout())
    allure.dynamic.parameter("Patroni member probe", probe_label(probe_ms))
    return variant(cluster.dynamic_config())
