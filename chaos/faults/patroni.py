"""Patroni REST API client and the operator actions we inject through it (switchover, maintenance mode).

Leadership is read from Patroni's own `/cluster` view (the DCS), never inferred from a port answering.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import requests
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_fixed,
)

from topology.endpoints import patroni_api
from topology.names import PATRONI_NODES

from .base import Fault, FaultError

LEADER_ROLES = ("leader", "standby_leader", "master", "primary")


def published_api_urls() -> dict[str, str]:
    """Host-side REST API URL of each Patroni node (DPG_PORT_PATRONI_N_API, default 8007+N)."""
    return {node: patroni_api(node) for node in PATRONI_NODES}


class PatroniError(RuntimeError):
    """A Patroni REST call failed: no node answered, or it answered with an error status."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class _Unreachable(PatroniError):
    pass


class PatroniAPI:
    """Thin client for the Patroni REST API; `base_url` may be one URL or several tried in order."""

    def __init__(self, base_url: str | Sequence[str], *, timeout: float = 3.0,
                 action_timeout: float = 60.0, retries: int = 3,
                 member_urls: dict[str, str] | None = None) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("PatroniAPI needs at least one base URL")
        self.urls = [u.rstrip("/") for u in urls]
        self.timeout = timeout
        self.action_timeout = action_timeout
        self.retries = max(1, retries)
        self.member_urls = dict(member_urls or {})
        self.last_url: str | None = None
        self.session = requests.Session()

    @classmethod
    def published(cls, **kwargs: Any) -> "PatroniAPI":
        """A client over every node's host-published API (any node can answer cluster-wide calls)."""
        return cls(list(published_api_urls().values()), **kwargs)

    def __repr__(self) -> str:
        return f"PatroniAPI({', '.join(self.urls)})"

    # -- transport ---------------------------------------------------------------------------------

    def _once(self, method: str, path: str, *, urls: Sequence[str], json: Any, timeout: float
              ) -> requests.Response:
        errors = []
        for url in urls:
            try:
                r = self.session.request(method, url + path, json=json, timeout=timeout)
            except requests.RequestException as e:
                errors.append(f"{url}: {type(e).__name__}")
                continue
            self.last_url = url
            return r
        raise _Unreachable(f"{method} {path}: no Patroni API answered ({'; '.join(errors)})")

    def request(self, method: str, path: str, *, json: Any = None, urls: Sequence[str] | None = None,
                timeout: float | None = None, retry: bool = True, ok: Sequence[int] = (200,)
                ) -> requests.Response:
        """Send to the first URL that answers; retry transport failures (a node may be restarting)."""
        urls = list(urls or self.urls)
        timeout = timeout or self.timeout
        attempts = self.retries if retry else 1
        try:
            r = Retrying(stop=stop_after_attempt(attempts), wait=wait_fixed(0.5),
                         retry=retry_if_exception_type(_Unreachable), reraise=True)(
                self._once, method, path, urls=urls, json=json, timeout=timeout)
        except RetryError as e:  # pragma: no cover - reraise=True
            raise e.last_attempt.exception() from None
        if r.status_code not in ok:
            body = r.text.strip()
            raise PatroniError(f"{method} {self.last_url}{path} -> {r.status_code}: {body[:300]}",
                               status=r.status_code, body=body)
        return r

    # -- reads -------------------------------------------------------------------------------------

    def cluster(self) -> dict[str, Any]:
        """GET /cluster: members with role/state/lag, plus `pause` when in maintenance mode."""
        return self.request("GET", "/cluster").json()

    def members(self) -> list[dict[str, Any]]:
        return list(self.cluster().get("members") or [])

    def leader(self) -> str | None:
        """Name of the current leader according to the DCS, or None while there is none."""
        for m in self.members():
            if m.get("role") in LEADER_ROLES:
                return m.get("name")
        return None

    def is_paused(self) -> bool:
        return bool(self.cluster().get("pause"))

    def node(self, url: str | None = None) -> dict[str, Any]:
        """GET /patroni of one node (its own name is under `patroni.name`)."""
        return self.request("GET", "/patroni", urls=[url] if url else None, ok=(200, 503)).json()

    def member_url(self, member: str) -> str:
        """A base URL that reaches `member`'s own API: `member_urls`, else one of our URLs that says it
        is that member, else the `api_url` from /cluster (only reachable from inside the network)."""
        if member in self.member_urls:
            return self.member_urls[member]
        for url in self.urls:
            try:
                name = (self.node(url).get("patroni") or {}).get("name")
            except (PatroniError, ValueError):
                continue
            if name:
                self.member_urls[name] = url
            if name == member:
                return url
        for m in self.members():
            if m.get("name") == member and m.get("api_url"):
                return m["api_url"].rsplit("/patroni", 1)[0]
        raise PatroniError(f"no REST API URL known for member {member!r}")

    # -- actions -----------------------------------------------------------------------------------

    def switchover(self, leader: str, candidate: str | None = None) -> str:
        """POST /switchover (synchronous: returns once Patroni reports the outcome)."""
        body: dict[str, Any] = {"leader": leader}
        if candidate:
            body["candidate"] = candidate
        return self.request("POST", "/switchover", json=body, timeout=self.action_timeout,
                            retry=False).text

    def failover(self, candidate: str) -> str:
        """POST /failover to `candidate` (works without a healthy leader)."""
        return self.request("POST", "/failover", json={"candidate": candidate},
                            timeout=self.action_timeout, retry=False).text

    def restart(self, member: str) -> str:
        """POST /restart on `member`'s own API (restarts its PostgreSQL, not Patroni)."""
        return self.request("POST", "/restart", json={}, urls=[self.member_url(member)],
                            timeout=self.action_timeout, retry=False).text

    def pause(self) -> dict[str, Any]:
        """Enter maintenance mode: PATCH /config {"pause": true}."""
        return self.request("PATCH", "/config", json={"pause": True}).json()

    def resume(self) -> dict[str, Any]:
        """Leave maintenance mode: PATCH /config {"pause": null} (what `patronictl resume` sends)."""
        return self.request("PATCH", "/config", json={"pause": None}).json()


class _Race(Exception):
    """The leader moved under us (or there was none for a moment): read it again and retry."""


class Switchover(Fault):
    """Planned leader change through Patroni (optionally to `candidate`); heal changes nothing, records the new leader."""

    def __init__(self, api: PatroniAPI | None = None, candidate: str | None = None,
                 wait: float = 60.0, *, history=None) -> None:
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
            if isinstance(e, _Unreachable) or e.status in (412, 503):
                raise _Race(str(e)) from e
            raise FaultError(f"switchover refused: {e}") from e

    def inject(self) -> None:
        try:
            Retrying(stop=stop_after_delay(self.wait), wait=wait_fixed(1),
                     retry=retry_if_exception_type((_Race, _Unreachable)), reraise=True)(self._attempt)
        except (_Race, _Unreachable) as e:
            raise FaultError(f"switchover did not happen within {self.wait}s: {e}") from e
        deadline = time.monotonic() + self.wait
        while (now := self._moved()) is None:
            if time.monotonic() >= deadline:
                raise FaultError(f"switchover accepted but leader still not moved from "
                                 f"{self.old_leader} after {self.wait}s")
            time.sleep(0.5)
        self.new_leader = now

    def heal(self) -> None:
        """Nothing to undo (the new leader stays); only re-read who leads now."""
        try:
            self.new_leader = self.api.leader() or self.new_leader
        except PatroniError:
            pass

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

    def targets(self) -> str:
        return "patroni"

    def inject(self) -> None:
        self._touched = True
        self.api.pause()

    def heal(self) -> None:
        if not self._touched:
            return
        Retrying(stop=stop_after_delay(30), wait=wait_fixed(1),
                 retry=retry_if_exception_type(PatroniError), reraise=True)(self.api.resume)


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
        self.before = {k: current.get(k) for k in self.changes}   # absent -> None: PATCH null removes it
        self.api.request("PATCH", "/config", json=self.changes)

    def heal(self) -> None:
        if self.before is None:
            return
        Retrying(stop=stop_after_delay(30), wait=wait_fixed(1), retry=retry_if_exception_type(PatroniError),
                 reraise=True)(self.api.request, "PATCH", "/config", json=self.before)

    def injected_detail(self) -> str:
        return f"{self.describe()} (was {self.before})"
