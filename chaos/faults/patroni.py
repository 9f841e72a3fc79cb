"""Operator actions injected through Patroni's REST API: switchover, maintenance mode, dynamic config.

The API client itself belongs to the system under test (`topology.patroni_api`); it is re-exported here.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from topology.patroni_api import LEADER_ROLES, PatroniAPI, PatroniError, Unreachable, published_api_urls

from .base import Fault, FaultError

__all__ = [
    "LEADER_ROLES",
    "DynamicConfigChanged",
    "MaintenanceMode",
    "PatroniAPI",
    "PatroniError",
    "Switchover",
    "published_api_urls",
]


class _Race(Exception):
    """The leader moved under us (or there was none for a moment): read it again and retry."""


class Switchover(Fault):
    """Planned leader change through Patroni (optionally to `candidate`); heal changes nothing, records the new
    leader."""

    def __init__(
        self, api: PatroniAPI | None = None, candidate: str | None = None, wait: float = 60.0, *, history=None
    ) -> None:
        super().__init__(history=history)
        self.api = api or PatroniAPI.published()
        self.candidate = candidate
        self.wait = wait
        self.old_leader: str | None = None
        self.new_leader: str | None = None

    def describe(self) -> str:
        return f"Switchover(to {self.candidate or 'any replica'})"

    def targets(self) -> str:
        return self.old_leader or "patroni"

    def _moved(self) -> str | None:
        """The leader if the switchover is visibly done, else None."""
        try:
            now = self.api.leader()
        except PatroniError:
            return None
        if now and now != self.old_leader and (self.candidate is None or now == self.candidate):
            return now
        return None

    def _attempt(self) -> None:
        leader = self.api.leader()
        if leader is None:
            raise _Race("no leader right now")
        if self.old_leader is None:
            self.old_leader = leader
        elif leader != self.old_leader:
            if self._moved():
                return  # an earlier attempt (or someone else) already did it
            self.old_leader = leader
        if self.candidate == leader:
            raise FaultError(f"{self.candidate} is already the leader: nothing to switch over")
        try:
            self.api.switchover(leader, self.candidate)
        except PatroniError as e:
            if self._moved():  # e.g. 503 "switchover status unknown" while it did happen
                return
            if isinstance(e, Unreachable) or e.status in (412, 503):
                raise _Race(str(e)) from e
            raise FaultError(f"switchover refused: {e}") from e

    def inject(self) -> None:
        try:
            Retrying(
                stop=stop_after_delay(self.wait),
                wait=wait_fixed(1),
                retry=retry_if_exception_type((_Race, Unreachable)),
                reraise=True,
            )(self._attempt)
        except (_Race, Unreachable) as e:
            raise FaultError(f"switchover did not happen within {self.wait}s: {e}") from e
        deadline = time.monotonic() + self.wait
        while (now := self._moved()) is None:
            if time.monotonic() >= deadline:
                raise FaultError(
                    f"switchover accepted but leader still not moved from {self.old_leader} after {self.wait}s"
                )
            time.sleep(0.5)
        self.new_leader = now

    def heal(self) -> None:
        """Nothing to undo (the new leader stays); only re-read who leads now."""
        with contextlib.suppress(PatroniError):
            self.new_leader = self.api.leader() or self.new_leader

    def injected_detail(self) -> str:
        return f"{self.describe()}: {self.old_leader} -> {self.new_leader}"

    def healed_detail(self) -> str:
        return f"{self.describe()}: nothing to undo; leader was {self.old_leader}, now {self.new_leader}"


class MaintenanceMode(Fault):
    """Pause Patroni (no automatic failover while the body runs); heal resumes it."""

    def __init__(self, api: PatroniAPI | None = None, *, history=None) -> None:
        super().__init__(history=history)
        self.api = api or PatroniAPI.published()
        self._touched = False

    def describe(self) -> str:
        return "MaintenanceMode(patroni paused)"

    def undo_record(self) -> dict:
        return {"api": list(getattr(self.api, "urls", []))}

    def targets(self) -> str:
        return "patroni"

    def inject(self) -> None:
        self._touched = True
        self.api.pause()

    def heal(self) -> None:
        if not self._touched:
            return
        Retrying(
            stop=stop_after_delay(30), wait=wait_fixed(1), retry=retry_if_exception_type(PatroniError), reraise=True
        )(self.api.resume)


class DynamicConfigChanged(Fault):
    """Change Patroni's dynamic (DCS) configuration, e.g. {"failsafe_mode": True}; heal restores the old values.

    A setting, not a breakage, but it must be undone as surely as one: a test that leaves failsafe_mode or
    synchronous_mode on changes what every later test measures."""

    def __init__(self, changes: dict[str, Any], api: PatroniAPI | None = None, *, history=None) -> None:
        super().__init__(history=history)
        if not changes:
            raise ValueError("DynamicConfigChanged needs at least one setting")
        self.changes = dict(changes)
        self.api = api or PatroniAPI.published()
        self.before: dict[str, Any] | None = None

    def describe(self) -> str:
        return "DynamicConfigChanged(" + ", ".join(f"{k}={v!r}" for k, v in self.changes.items()) + ")"

    def targets(self) -> str:
        return "patroni"

    def inject(self) -> None:
        current = self.api.request("GET", "/config").json()
        self.before = {k: current.get(k) for k in self.changes}  # absent -> None: PATCH null removes it
        self.api.request("PATCH", "/config", json=self.changes)

    def heal(self) -> None:
        if self.before is None:
            return
        Retrying(
            stop=stop_after_delay(30), wait=wait_fixed(1), retry=retry_if_exception_type(PatroniError), reraise=True
        )(self.api.request, "PATCH", "/config", json=self.before)

    def undo_record(self) -> dict:
        return {"api": list(getattr(self.api, "urls", [])), "changes": self.changes, "before": self.before}

    def injected_detail(self) -> str:
        return f"{self.describe()} (was {self.before})"
