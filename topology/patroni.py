"""Typed handle on the Patroni cluster. Leadership is read from the DCS (etcd), as Patroni's own tests do."""

from __future__ import annotations

import json
from dataclasses import dataclass

import docker
import requests

from . import endpoints
from .errors import TopologyError
from .etcd import EtcdGateway
from .inventory import current, engines
from .names import ETCD_MEMBERS, PATRONI_NODES

SCOPE = "dpg"  # the embedded topology's; a target's scope and namespace come from its inventory
LEADER_KEY = f"/service/{SCOPE}/leader"
SYNC_KEY = f"/service/{SCOPE}/sync"
MEMBERS_PREFIX = f"/service/{SCOPE}/members/"


def dcs_keys() -> tuple[str, str, str]:
    """(leader key, sync key, members prefix) of the deployment under test."""
    inv = current()
    base = f"{inv.patroni_namespace}/{inv.patroni_scope}"
    return f"{base}/leader", f"{base}/sync", f"{base}/members/"


#: Dynamic-config key the image's patched Patroni reads as the leader race's member-probe timeout (ms); absent =
#: Patroni's own 2 s (compose/images/postgres/Dockerfile). Written per experiment by chaos.experiments.cluster_settings.
PROBE_KEY = "dpg_member_probe_timeout_ms"


@dataclass(frozen=True)
class Member:
    name: str
    role: str  # leader | replica | sync_standby | ...
    state: str  # running | streaming | stopped | ...
    timeline: int | None
    lag: int | None  # bytes behind the leader (None if unknown)

    @property
    def is_leader(self) -> bool:
        return self.role == "leader"


class PatroniCluster:
    """Ask etcd who leads and Patroni's REST API what each member is doing."""

    def __init__(self, client: docker.DockerClient):
        self.client = client
        self.etcd = EtcdGateway()

    # -- source of truth: the DCS
    def leader_in_dcs(self, *, strict: bool = False) -> str | None:
        """The holder of the leader key, read from etcd (any member with a quorum); None when there is none.
        strict: raise EtcdUnavailable when etcd does not answer, instead of reading that as 'no leader'."""
        key = dcs_keys()[0]
        return (self.etcd.read(key) if strict else self.etcd.get(key)) or None

    def sync_standbys_in_dcs(self) -> list[str]:
        """The standbys the leader has *recorded* in the /sync key as synchronous.

        Only these may be promoted in synchronous mode. The REST API may report a `sync_standby` role as soon as
        synchronous_standby_names names it, before Patroni has written the key (a second DCS round trip, ~1-2 s
        later); a leader lost in between leaves no candidate at all, and nobody is promoted (seen once)."""
        data = self._json_in_dcs(dcs_keys()[1])
        if data is None or data.get("leader") != self.leader_in_dcs():
            return []
        names = data.get("sync_standby") or ""
        return [n for n in (names if isinstance(names, list) else str(names).split(",")) if n]

    def role_in_dcs(self, node: str) -> str | None:
        """The role `node` last published in its member key: replica, promoted, primary, demoted ... (None if absent).

        'promoted' lasts from `pg_ctl promote` until Patroni has seen the promotion finish and touched the key
        again (1-2 s here). A node whose rewind check reads the leader in that window skips the check."""
        data = self._json_in_dcs(dcs_keys()[2] + node)
        return None if data is None else data.get("role")

    def _json_in_dcs(self, key: str) -> dict | None:
        """A key Patroni writes as a JSON object, parsed; None when it is absent, not JSON or not an object."""
        raw = self.etcd.get(key)
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def etcd_health(self) -> dict[str, bool]:
        return {member: self.etcd.healthy(member) for member in ETCD_MEMBERS}

    # -- Patroni REST API
    def cluster_json(self, *, prefer: str | None = None) -> dict:
        """GET /cluster from the first node that answers (the view Patroni itself has of the DCS)."""
        return self._api_json("/cluster", prefer=prefer)

    def _api_json(self, path: str, *, prefer: str | None = None) -> dict:
        order = ([prefer] if prefer else []) + [n for n in PATRONI_NODES if n != prefer]
        last: Exception | None = None
        for node in order:
            try:
                r = requests.get(endpoints.patroni_api(node) + path, timeout=2)
                r.raise_for_status()
                return r.json()
            except (requests.RequestException, ValueError) as exc:
                last = exc
        raise ConnectionError(f"no Patroni REST API answered GET {path}: {last}")

    def dynamic_config(self) -> dict:
        """GET /config: the cluster-wide settings in the DCS (synchronous_mode, ttl ...), from the first node
        that answers."""
        return self._api_json("/config")

    def members(self) -> list[Member]:
        data = self.cluster_json()
        out = []
        for m in data.get("members", []):
            lag = m.get("lag")
            out.append(
                Member(
                    m["name"],
                    m.get("role", "?"),
                    m.get("state", "?"),
                    m.get("timeline"),
                    lag if isinstance(lag, int) else None,
                )
            )
        return out

    def leader(self) -> str | None:
        return self.leader_in_dcs()

    def replicas(self) -> list[str]:
        return [m.name for m in self.members() if not m.is_leader]

    def node_status(self, node: str) -> dict:
        r = requests.get(endpoints.patroni_api(node) + "/patroni", timeout=2)
        return r.json()

    def patronictl_list(self) -> str:
        """`patronictl list` output from a running node, for evidence attachments."""
        for node in PATRONI_NODES:
            try:
                c = engines().container(node)
                if c.status != "running":
                    continue
                res = c.exec_run(["patronictl", "-c", "/etc/patroni/patroni.yml", "list"])
                if res.exit_code == 0:
                    return res.output.decode()
            except (docker.errors.NotFound, docker.errors.APIError, TopologyError):
                continue
        try:
            return json.dumps(self.cluster_json(), indent=2)
        except ConnectionError as exc:
            return f"(no node answered: {exc})"


def patroni_node_of_ip() -> dict[str, str]:
    """Patroni member by each address its container has (what `inet_server_addr()` reports to a client), and by its
    own name (what a node of this project's image reports: `dpg.node_name`, chaos.clients.probes.SERVER_ID)."""
    out: dict[str, str] = {n: n for n in PATRONI_NODES}
    for node in PATRONI_NODES:
        try:
            nets = (engines().container(node).attrs.get("NetworkSettings") or {}).get("Networks") or {}
        except (docker.errors.DockerException, TopologyError):
            continue
        for net in nets.values():
            if net.get("IPAddress"):
                out[net["IPAddress"]] = node
    return out
