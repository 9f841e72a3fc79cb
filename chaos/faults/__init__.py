"""Faults (Jepsen's nemeses): context managers that inject on enter and ALWAYS heal on exit.

    from chaos.faults import Paused, Isolated
    with Isolated("dpg-patroni-1", from_=["dpg-patroni-2", "dpg-patroni-3"], history=h):
        ...

Every active fault is known to `chaos.registry`, which heals them on SIGINT/SIGTERM/exit and from
`heal_all()`; `python -m chaos heal` reaps what a SIGKILLed run left behind.
"""
from __future__ import annotations

from ..registry import active, heal_all, reap_leftovers
from .base import Fault, FaultError, FaultEvent, HealError, RULE_TAG, Target
from .config import Reconfigured
from .containers import Killed, Paused, Stopped
from .network import Disconnected, Isolated, Partitioned
from .patroni import DynamicConfigChanged, MaintenanceMode, PatroniAPI, PatroniError, Switchover, published_api_urls
from .process import ProcessKilled
from .replay import ReplayPaused
from .services import ServiceReloaded, ServiceRestarted
from .toxics import ProxyDisabled, Toxic

#: Every fault kind, in the order `python -m chaos list` shows them.
FAULT_KINDS: tuple[type[Fault], ...] = (
    Killed, Stopped, Paused,
    ProcessKilled, ReplayPaused,
    Isolated, Partitioned, Disconnected,
    Toxic, ProxyDisabled,
    Switchover, MaintenanceMode, DynamicConfigChanged,
    ServiceReloaded, ServiceRestarted,
    Reconfigured,
)

__all__ = [
    "FAULT_KINDS", "RULE_TAG", "Target",
    "Fault", "FaultError", "FaultEvent", "HealError",
    "Killed", "Stopped", "Paused", "ProcessKilled", "ReplayPaused",
    "Isolated", "Partitioned", "Disconnected",
    "Toxic", "ProxyDisabled",
    "PatroniAPI", "PatroniError", "published_api_urls", "Switchover", "MaintenanceMode", "DynamicConfigChanged",
    "ServiceReloaded", "ServiceRestarted", "Reconfigured",
    "active", "heal_all", "reap_leftovers",
]
