"""Patroni REST API client: cluster reads and the operator's calls (switchover, failover, pause, config).

The system under test's own control interface (Jepsen's `db` `Primary` protocol): faults drive it, experiments
and the reaper read it. Leadership comes from Patroni's `/cluster` view (the DCS), never from a port answering.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from .endpoints import patroni_api
from .names import PATRONI_NODES

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


class Unreachable(PatroniError):
    """No node answered at all (transport failure), as opposed to an error status."""


class PatroniAPI:
    """Thin client for the Patroni REST API; `base_url` may be one URL or several tried in order."""

    def __init__(
        self,
        base_url: str | Sequence[str],
        *,
        timeout: float = 3.0,
        action_timeout: float = 60.0,
        retries: int = 3,
        member_urls: dict[str, str] | None = None,
    ) -> None:
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
    def published(cls, **kwargs: Any) -> PatroniAPI:
        """A client over every node's host-published API (any node can answer cluster-wide calls)."""
        return cls(list(published_api_urls().values()), **kwargs)

    def __repr__(self) -> str:
        return f"PatroniAPI({', '.join(self.urls)})"

    # -- transport ---------------------------------------------------------------------------------

    def _once(self, method: str, path: str, *, urls: Sequence[str], json: Any, timeout: float) -> requests.Response:
        errors = []
        for url in urls:
            try:
                r = self.session.request(method, url + path, json=json, timeout=timeout)
            except requests.RequestException as e:
                errors.append(f"{url}: {type(e).__name__}")
                continue
            self.last_url = url
            return r
        raise Unreachable(f"{method} {path}: no Patroni API answered ({'; '.join(errors)})")

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        urls: Sequence[str] | None = None,
        timeout: float | None = None,
        retry: bool = True,
        ok: Sequence[int] = (200,),
    ) -> requests.Response:
        """Send to the first URL that answers; retry transport failures (a node may be restarting)."""
        urls = list(urls or self.urls)
        timeout = timeout or self.timeout
        attempts = self.retries if retry else 1
        try:
            r = Retrying(
                stop=stop_after_attempt(attempts),
                wait=wait_fixed(0.5),
                retry=retry_if_exception_type(Unreachable),
                reraise=True,
            )(self._once, method, path, urls=urls, json=json, timeout=timeout)
        except RetryError as e:  # pragma: no cover - reraise=True
            raise e.last_attempt.exception() from None
        if r.status_code not in ok:
            body = r.text.strip()
            raise PatroniError(
                f"{method} {self.last_url}{path} -> {r.status_code}: {body[:300]}", status=r.status_code, body=body
            )
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
        return self.request("POST", "/switchover", json=body, timeout=self.action_timeout, retry=False).text

    def failover(self, candidate: str) -> str:
        """POST /failover to `candidate` (works without a healthy leader)."""
        return self.request(
            "POST", "/failover", json={"candidate": candidate}, timeout=self.action_timeout, retry=False
        ).text

    def restart(self, member: str) -> str:
        """POST /restart on `member`'s own API (restarts its PostgreSQL, not Patroni)."""
        return self.request(
            "POST", "/restart", json={}, urls=[self.member_url(member)], timeout=self.action_timeout, retry=False
        ).text

    def pause(self) -> dict[str, Any]:
        """Enter maintenance mode: PATCH /config {"pause": true}."""
        return self.request("PATCH", "/config", json={"pause": True}).json()

    def resume(self) -> dict[str, Any]:
        """Leave maintenance mode: PATCH /config {"pause": null} (what `patronictl resume` sends)."""
        return self.request("PATCH", "/config", json={"pause": None}).json()
