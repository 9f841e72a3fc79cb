"""Typed handles on the etcd cluster under Patroni.

- `EtcdCluster`: raft leader, quorum, and which member a Patroni node uses. Asked with etcdctl inside the
  members themselves (over their own 127.0.0.1), so the answers stay available while a member is cut from
  its peers by a network fault.
- `EtcdGateway`: keys and health over each member's published client port (etcd's v3 JSON gateway). This is
  what is polled while a fault runs: a `docker exec` costs dockerd, containerd, runc and an etcdctl start,
  and five a second (the leader watcher) took CPU from the very failover being measured on 2 cores.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass

import docker
import requests

from . import endpoints
from .errors import TopologyError
from .inventory import engines
from .names import ETCD_MEMBERS, PATRONI_NODES

ETCD_CLIENT_PORT = 2379
_ESTABLISHED = "01"


@dataclass(frozen=True)
class EtcdMember:
    name: str
    running: bool
    member_id: int | None
    leader_id: int | None  # the raft leader this member believes in (0/None: none)
    raft_term: int | None
    healthy: bool  # a linearizable read succeeded: this member is part of a quorum
    cluster_id: str | None = None  # hex, as etcdctl prints it; from the token and the peer URLs

    @property
    def is_leader(self) -> bool:
        return self.member_id is not None and self.member_id == self.leader_id


class EtcdUnavailable(ConnectionError):
    """No etcd member answered a quorum read."""


class EtcdGateway:
    """Linearizable reads and `/health` through the members' published client ports (one keep-alive session
    per thread, so a poll is one small HTTP request)."""

    def __init__(self, *, timeout: float = 1.0):
        self.timeout = timeout
        self._local = threading.local()
        self._answered = ETCD_MEMBERS[0]  # asked first next time: a cut-off member costs one timeout, once

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def read(self, key: str) -> str | None:
        """The value of `key` from the first member that answers with a quorum read (None: the key is absent).

        Raises EtcdUnavailable when no member answers, e.g. while etcd elects a raft leader (its members then
        answer nothing for a second or two) or without a quorum: that is not the same as an absent key."""
        body = {"key": base64.b64encode(key.encode()).decode()}
        for member in sorted(ETCD_MEMBERS, key=lambda m: m != self._answered):
            try:
                r = self._session().post(endpoints.etcd_api(member) + "/v3/kv/range", json=body, timeout=self.timeout)
                if r.status_code != 200:
                    continue
                kvs = r.json().get("kvs") or []
            except (requests.RequestException, ValueError):
                continue
            self._answered = member
            return base64.b64decode(kvs[0]["value"]).decode() if kvs else None
        raise EtcdUnavailable(f"no etcd member answered a quorum read of {key}")

    def get(self, key: str) -> str | None:
        """`read`, with no answer read as 'no value' (as a failing etcdctl would leave a health gate)."""
        try:
            return self.read(key)
        except EtcdUnavailable:
            return None

    def healthy(self, member: str) -> bool:
        """etcd's own /health: true only while the member serves a linearizable read (is in a quorum)."""
        try:
            r = self._session().get(endpoints.etcd_api(member) + "/health", timeout=self.timeout + 1)
            return r.status_code == 200 and r.json().get("health") == "true"
        except (requests.RequestException, ValueError):
            return False


class EtcdCluster:
    def __init__(self, client: docker.DockerClient):
        self.client = client

    def _exec(self, member: str, *args: str) -> tuple[int, str]:
        try:
            c = engines().container(member)
        except (docker.errors.NotFound, TopologyError):
            return 1, "no such container"
        if c.status != "running":
            return 1, c.status
        res = c.exec_run(
            [
                "etcdctl",
                f"--endpoints=http://127.0.0.1:{ETCD_CLIENT_PORT}",
                "--command-timeout=2s",
                "--dial-timeout=1s",
                *args,
            ],
            demux=True,
        )
        out, err = res.output
        # stdout carries the answer; etcdctl logs retries on stderr (kept for the error case only)
        return res.exit_code, (out or b"").decode(errors="replace") if res.exit_code == 0 else (
            (out or b"") + (err or b"")
        ).decode(errors="replace")

    def member(self, name: str) -> EtcdMember:
        rc, out = self._exec(name, "endpoint", "status", "-w", "json")
        if rc != 0:
            return EtcdMember(
                name,
                running=out not in ("no such container", "exited"),
                member_id=None,
                leader_id=None,
                raft_term=None,
                healthy=False,
            )
        status = json.loads(out)[0]["Status"]
        healthy = self._exec(name, "endpoint", "health")[0] == 0
        return EtcdMember(
            name,
            True,
            int(status["header"]["member_id"]),
            int(status.get("leader") or 0),
            int(status.get("raft_term") or 0),
            healthy,
            format(int(status["header"]["cluster_id"]), "x"),
        )

    def members(self) -> list[EtcdMember]:
        return [self.member(m) for m in ETCD_MEMBERS]

    def cluster_id(self) -> str | None:
        """The etcd cluster's ID (etcd derives it from the initial token and the members' peer URLs)."""
        return next((m.cluster_id for m in self.members() if m.cluster_id), None)

    def raft_term(self) -> int:
        """The highest raft term a member reports (0: none answered)."""
        return max((m.raft_term or 0 for m in self.members()), default=0)

    def move_leader(self) -> str:
        """Hand raft leadership to another member (`etcdctl move-leader`, sent to the leader): one new term."""
        members = self.members()
        leader = next((m for m in members if m.healthy and m.is_leader), None)
        other = next((m for m in members if m.healthy and not m.is_leader and m.member_id), None)
        if leader is None or other is None:
            raise TopologyError(f"cannot move etcd's leadership: members {members}")
        rc, out = self._exec(leader.name, "move-leader", format(other.member_id, "x"))
        if rc != 0:
            raise TopologyError(f"etcdctl move-leader on {leader.name} failed: {out.strip()}")
        return other.name

    def leader(self) -> str | None:
        """The raft leader, as seen by a member that is part of a quorum (None while there is none)."""
        for m in self.members():
            if m.healthy and m.is_leader:
                return m.name
        return None

    def has_quorum(self) -> bool:
        return any(m.healthy for m in self.members())

    def healthy_count(self) -> int:
        return sum(m.healthy for m in self.members())

    def ip_of(self) -> dict[str, str]:
        out = {}
        for m in ETCD_MEMBERS:
            try:
                nets = engines().container(m).attrs["NetworkSettings"]["Networks"]
            except (docker.errors.NotFound, TopologyError):
                continue
            for net in nets.values():
                if net.get("IPAddress"):
                    out[net["IPAddress"]] = m
        return out

    def client_member_of(self, node: str) -> str | None:
        """The etcd member a Patroni node holds its established client connection(s) to.

        Read from the node's /proc/net/tcp (no tool needed in the image); with several, the most used."""
        if node not in PATRONI_NODES:
            raise ValueError(f"unknown Patroni node {node!r}")
        res = engines().container(node).exec_run(["cat", "/proc/net/tcp"])
        counts: dict[str, int] = {}
        ips = self.ip_of()
        for line in res.output.decode().splitlines()[1:]:
            parts = line.split()
            if len(parts) < 4 or parts[3] != _ESTABLISHED:
                continue
            ip_hex, port_hex = parts[2].split(":")
            if int(port_hex, 16) != ETCD_CLIENT_PORT:
                continue
            ip = ".".join(str(b) for b in reversed(bytes.fromhex(ip_hex)))
            if ip in ips:
                counts[ips[ip]] = counts.get(ips[ip], 0) + 1
        return max(counts, key=counts.get) if counts else None
