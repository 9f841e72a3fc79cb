"""Faults (Jepsen's nemeses): context managers that inject on enter and ALWAYS heal on exit.

    from chaos.faults import Paused, Isolated
    with Isolated("dpg-patroni-1", from_=["dpg-patroni-2", "dpg-patroni-3"], history=h):
        ...

Every active fault is known to `chaos.faults.registry`, which heals them on SIGINT/SIGTERM/exit and from
`heal_all()`; `python -m chaos heal` (`chaos.faults.heal`) reaps what a SIGKILLed run left behind.
A new fault is one `Fault` subclass here plus its entry in FAULT_KINDS. May import `chaos.history` and `topology`;
never clients, checkers, experiments or reports.
"""

from __future__ import annotations

from . import declared
from .base import RULE_TAG, Fault, FaultError, FaultEvent, FaultUnsupported, Target
from .config import Reconfigured
from .containers import Killed, Paused, Stopped
from .heal import reap_leftovers
from .hosts import HostCrashed, HostFrozen, HostIsolated, HostLatency, HostPacketLoss, HostsPartitioned, HostsRestarted
from .network import Disconnected, Isolated, Partitioned
from .patroni import DynamicConfigChanged, MaintenanceMode, PatroniAPI, PatroniError, Switchover, published_api_urls
from .process import ProcessKilled
from .registry import HealError, active, heal_all
from .replay import ReplayPaused
from .services import ServiceReloaded, ServiceRestarted
from .toxics import ProxyDisabled, Toxic

#: Every fault kind, in the order `python -m chaos list` shows them.
FAULT_KINDS: tuple[type[Fault], ...] = (
    Killed,
    Stopped,
    Paused,
    ProcessKilled,
    ReplayPaused,
    Isolated,
    Partitioned,
    Disconnected,
    Toxic,
    ProxyDisabled,
    Switchover,
    MaintenanceMode,
    DynamicConfigChanged,
    ServiceReloaded,
    ServiceRestarted,
    Reconfigured,
    HostCrashed,
    HostFrozen,
    HostIsolated,
    HostsPartitioned,
    HostPacketLoss,
    HostLatency,
    HostsRestarted,
)

__all__ = [
    "FAULT_KINDS",
    "RULE_TAG",
    "Disconnected",
    "DynamicConfigChanged",
    "Fault",
    "FaultError",
    "FaultEvent",
    "FaultUnsupported",
    "HealError",
    "HostCrashed",
    "HostFrozen",
    "HostIsolated",
    "HostLatency",
    "HostPacketLoss",
    "HostsPartitioned",
    "HostsRestarted",
    "Isolated",
    "Killed",
    "MaintenanceMode",
    "Partitioned",
    "PatroniAPI",
    "PatroniError",
    "Paused",
    "ProcessKilled",
    "ProxyDisabled",
    "Reconfigured",
    "ReplayPaused",
    "ServiceReloaded",
    "ServiceRestarted",
    "Stopped",
    "Switchover",
    "Target",
    "Toxic",
    "active",
    "declared",
    "heal_all",
    "published_api_urls",
    "reap_leftovers",
]
