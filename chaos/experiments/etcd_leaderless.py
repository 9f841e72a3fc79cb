"""Issue 21: cut the etcd raft leader off and measure how long the two healthy members stay without a leader.

A standalone trio of etcd members (the project's `dpg/etcd` image, the stack's ETCD_* settings) on its own Docker
network, so nothing of the Patroni stack is touched and each run starts from a fresh cluster at term 2, like the
CI cluster in which the long leaderless periods were seen. One run: bootstrap (or reuse) the trio, find the raft
leader from the members' own `maintenance/status`, optionally apply a Patroni-like client load and a prior cut of
a follower, cut the leader (iptables DROP / REJECT in its netns, or `docker network disconnect`), poll the two
healthy members every 100 ms for their leader and term, heal, and gate on all three members agreeing on one leader.
The time to a new leader is taken twice: from the members' own log timestamps (etcd's JSON `ts`) and from polling.

Parsing of etcd's log lines into events is pure (`parse_line`, `summarise`) and unit-tested.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaos.faults import network

IMAGE = "dpg/etcd:latest"
PREFIX = "dpg21-"
LABELS = {"io.dpg-chaos.scratch": "issue21", "io.dpg-chaos.managed": "scratch21"}
CUTS = ("iptables-drop", "iptables-reject", "disconnect")
SUBNET = "172.31.221.0/24"  # our own network's (unused by the stack: 172.25.0.0/16)
PORT_BASE = 23820  # member i publishes its client port on 127.0.0.1:PORT_BASE+i
POLL_S = 0.1
MAX_WAIT_S = 40.0  # a run gives up waiting for a new leader after this long (recorded as censored)

# -- etcd log lines -> events (pure) ---------------------------------------------------------------------------

#: (kind, regex on etcd's "msg") in match order; groups: term, peer where the line has them
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (k, re.compile(p))
    for k, p in (
        ("lost_leader", r"raft\.node: \w+ lost leader \w+ at term (?P<term>\d+)"),
        ("elected_leader", r"raft\.node: \w+ elected leader (?P<peer>\w+) at term (?P<term>\d+)"),
        ("became_pre_candidate", r"^\w+ became pre-candidate at term (?P<term>\d+)"),
        ("became_candidate", r"^\w+ became candidate at term (?P<term>\d+)"),
        ("became_leader", r"^\w+ became leader at term (?P<term>\d+)"),
        ("became_follower", r"^\w+ became follower at term (?P<term>\d+)"),
        ("prevote_sent", r"sent MsgPreVote request to (?P<peer>\w+) at term (?P<term>\d+)"),
        ("vote_sent", r"sent MsgVote request to (?P<peer>\w+) at term (?P<term>\d+)"),
        ("prevote_granted", r"cast MsgPreVote for (?P<peer>\w+) .* at term (?P<term>\d+)"),
        ("vote_granted", r"cast MsgVote for (?P<peer>\w+) .* at term (?P<term>\d+)"),
        ("prevote_rejected", r"rejected MsgPreVote from (?P<peer>\w+) .* at term (?P<term>\d+)"),
        ("vote_rejected", r"rejected MsgVote from (?P<peer>\w+) .* at term (?P<term>\d+)"),
        ("prevote_resp", r"received MsgPreVoteResp(?: rejection)? from (?P<peer>\w+) at term (?P<term>\d+)"),
        ("vote_resp", r"received MsgVoteResp(?: rejection)? from (?P<peer>\w+) at term (?P<term>\d+)"),
        ("lease_not_expired", r"ignored (?:MsgPreVote|MsgVote) from (?P<peer>\w+) .*lease is not expired"),
        ("election_start", r"is starting a new election at term (?P<term>\d+)"),
    )
)
_RAFTHTTP = {
    "peer became inactive (message send to peer failed)": "peer_inactive",
    "peer became active": "peer_active",
    "lost TCP streaming connection with remote peer": "stream_lost",
    "established TCP streaming connection with remote peer": "stream_established",
    "dropped internal Raft message since sending buffer is full (overloaded network)": "send_dropped",
    "prober detected unhealthy status": "prober_unhealthy",
}


@dataclass(frozen=True)
class Event:
    ts: float  # etcd's own timestamp, epoch seconds
    member: str
    kind: str
    term: int | None = None
    peer: str | None = None  # raft id (hex) of the other side, where the line names one
    msg: str = ""


def _ts(text: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


def parse_line(member: str, line: str) -> Event | None:
    """One line of etcd 3.5's JSON log (optionally behind `docker logs --timestamps`' prefix) -> an Event of a
    kind this experiment counts, or None."""
    start = line.find("{")
    if start < 0:
        return None
    try:
        obj = json.loads(line[start:])
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    msg, ts = str(obj.get("msg", "")), _ts(str(obj.get("ts", "")))
    if ts is None:
        return None
    for kind, pat in _PATTERNS:
        m = pat.search(msg)
        if m:
            g = m.groupdict()
            term = int(g["term"]) if g.get("term") else None
            return Event(ts, member, kind, term, g.get("peer"), msg)
    kind = _RAFTHTTP.get(msg)
    if kind:
        peer = obj.get("peer-id") or obj.get("remote-peer-id")
        typ = obj.get("stream-writer-type") or obj.get("stream-reader-type") or obj.get("round-tripper-name") or ""
        return Event(ts, member, kind, None, peer, f"{msg} [{typ}] {obj.get('error', '')}".strip())
    return None


def _line_ts(line: str) -> float | None:
    m = re.search(r'"ts":"([^"]+)"', line)
    return _ts(m.group(1)) if m else None


def parse_log(member: str, text: str) -> list[Event]:
    return [e for e in (parse_line(member, ln) for ln in text.splitlines()) if e is not None]


@dataclass
class LogSummary:
    leaderless_s: float | None  # cut -> first "elected leader" at a higher term on a healthy member (None: not seen)
    new_leader: str | None
    new_term: int | None
    counts: dict[str, dict[str, int]]  # member -> kind -> count, within [cut, elected]
    first: dict[str, float]  # kind -> seconds after the cut of its first occurrence on a healthy member


def summarise(events: Iterable[Event], *, cut_wall: float, cut_term: int, healthy: Sequence[str]) -> LogSummary:
    """From the healthy members' events: when they elected a new leader after the cut, and what they logged
    in between (pre-votes sent/granted/received, rejections, stream losses)."""
    evs = sorted((e for e in events if e.member in healthy and e.ts >= cut_wall), key=lambda e: e.ts)
    elected = next((e for e in evs if e.kind == "elected_leader" and (e.term or 0) > cut_term), None)
    end = elected.ts if elected else float("inf")
    counts: dict[str, dict[str, int]] = {m: {} for m in healthy}
    first: dict[str, float] = {}
    for e in evs:
        if e.ts > end:
            break
        counts[e.member][e.kind] = counts[e.member].get(e.kind, 0) + 1
        first.setdefault(e.kind, round(e.ts - cut_wall, 3))
    return LogSummary(
        leaderless_s=round(elected.ts - cut_wall, 3) if elected else None,
        new_leader=elected.peer if elected else None,
        new_term=elected.term if elected else None,
        counts=counts,
        first=first,
    )


# -- the trio ----------------------------------------------------------------------------------------------------


def _post(port: int, path: str, body: dict, timeout: float = 0.5) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


@dataclass
class Settings:
    heartbeat_ms: int = 100
    election_ms: int = 1000
    pre_vote: bool = True
    log_level: str = "info"


class Trio:
    """Three etcd members dpg21-etcd-{1,2,3} on network dpg21-net, labelled as issue 21's scratch containers."""

    def __init__(
        self, client, settings: Settings, *, prefix: str = PREFIX, port_base: int = PORT_BASE, subnet: str = SUBNET
    ) -> None:
        self.client = client
        self.subnet = subnet
        self.settings = settings
        self.prefix = prefix
        self.net_name = f"{prefix}net"
        self.port_base = port_base
        self.members = [f"etcd-{i}" for i in (1, 2, 3)]

    def cname(self, member: str) -> str:
        return f"{self.prefix}{member}"

    def port(self, member: str) -> int:
        return self.port_base + int(member.rsplit("-", 1)[1])

    def container(self, member: str):
        return self.client.containers.get(self.cname(member))

    def _network(self):
        from docker.errors import NotFound

        try:
            return self.client.networks.get(self.net_name)
        except NotFound:
            # a configured subnet: Disconnected.heal reconnects with the member's own address, which Docker only
            # accepts on a network with a user-configured subnet
            from docker.types import IPAMConfig, IPAMPool

            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=self.subnet)])
            return self.client.networks.create(self.net_name, labels=LABELS, ipam=ipam)

    def remove(self) -> None:
        from docker.errors import NotFound

        for m in self.members:
            with contextlib.suppress(NotFound):
                c = self.client.containers.get(self.cname(m))
                if c.labels.get("io.dpg-chaos.scratch") == "issue21":  # never anything that is not ours
                    c.remove(force=True)

    def remove_network(self) -> None:
        from docker.errors import NotFound

        with contextlib.suppress(NotFound):
            net = self.client.networks.get(self.net_name)
            if (net.attrs.get("Labels") or {}).get("io.dpg-chaos.scratch") == "issue21":
                net.remove()

    def start(self) -> None:
        self.remove()
        net = self._network()
        s = self.settings
        host = self.cname  # Docker's DNS on our own network resolves the container names
        cluster = ",".join(f"{m}=http://{host(m)}:2380" for m in self.members)
        for m in self.members:
            env = {
                "ETCD_NAME": m,
                "ETCD_DATA_DIR": "/data/etcd",
                "ETCD_LISTEN_CLIENT_URLS": "http://0.0.0.0:2379",
                "ETCD_LISTEN_PEER_URLS": "http://0.0.0.0:2380",
                "ETCD_ADVERTISE_CLIENT_URLS": f"http://{host(m)}:2379",
                "ETCD_INITIAL_ADVERTISE_PEER_URLS": f"http://{host(m)}:2380",
                "ETCD_INITIAL_CLUSTER": cluster,
                "ETCD_INITIAL_CLUSTER_STATE": "new",
                "ETCD_INITIAL_CLUSTER_TOKEN": "dpg21",
                "ETCD_HEARTBEAT_INTERVAL": str(s.heartbeat_ms),
                "ETCD_ELECTION_TIMEOUT": str(s.election_ms),
                "ETCD_LOG_LEVEL": s.log_level,
                "ETCD_PRE_VOTE": "true" if s.pre_vote else "false",
            }
            c = self.client.containers.create(
                IMAGE,
                ["etcd"],
                name=self.cname(m),
                hostname=m,
                user="nobody",
                environment=env,
                labels=LABELS,
                cap_add=["NET_ADMIN"],
                mem_limit="256m",
                ports={"2379/tcp": ("127.0.0.1", self.port(m))},
                network=net.name,
            )
            c.start()

    def status(self, member: str) -> dict | None:
        try:
            return _post(self.port(member), "/v3/maintenance/status", {})
        except Exception:  # a member that does not answer is simply unknown at this instant
            return None

    def wait_leader(self, *, within: float = 30.0, members: Sequence[str] | None = None) -> tuple[str, int] | None:
        """(leader member name, term) once every given member reports the same leader; None on timeout."""
        members = list(members or self.members)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            st = {m: self.status(m) for m in members}
            if all(st.values()):
                leads = {s.get("leader", "0") for s in st.values()}  # type: ignore[union-attr]
                if len(leads) == 1 and "0" not in leads:
                    lead = leads.pop()
                    ids = self.ids()
                    name = next((m for m, i in ids.items() if i == lead), None)
                    if name:
                        return name, int(next(iter(st.values()))["raftTerm"])  # type: ignore[index]
            time.sleep(0.2)
        return None

    def ids(self) -> dict[str, str]:
        """member name -> raft id as decimal string (status) ; cached once known."""
        if not getattr(self, "_ids", None) or len(self._ids) < 3:
            self._ids = {m: s["header"]["member_id"] for m in self.members if (s := self.status(m))}
        return self._ids

    def hex_ids(self) -> dict[str, str]:
        return {format(int(i), "x"): m for m, i in self.ids().items()}

    def logs(self, member: str) -> str:
        return self.container(member).logs(stdout=True, stderr=True).decode("utf-8", "replace")

    def ss(self, member: str) -> list[str]:
        """Peer TCP connections (port 2380) inside a member: `state local peer`."""
        _rc, out = self.container(member).exec_run(["ss", "-tnH", "state", "all", "( sport = :2380 or dport = :2380 )"])
        return [" ".join(ln.split()[:1] + ln.split()[3:5]) for ln in out.decode().splitlines() if ln.strip()][:40]


# -- a Patroni-like client load (1 Hz per node, like loop_wait 1) ------------------------------------------------


class PatroniLikeLoad:
    """Three client threads at 1 Hz: the "leader" renews a lease and puts its key at the cut member first (falls
    back to the others, like Patroni), the two "replicas" read the prefix at the healthy members; one watch per
    member. Bounded by `seconds`."""

    def __init__(self, trio: Trio, leader: str, seconds: float) -> None:
        self.trio, self.leader, self.stop_at = trio, leader, time.monotonic() + seconds
        self.ops = {"ok": 0, "fail": 0}
        self._threads: list[threading.Thread] = []

    @staticmethod
    def _b64(s: str) -> str:
        return base64.b64encode(s.encode()).decode()

    def _node(self, order: list[str], leader: bool) -> None:
        lease = None
        while time.monotonic() < self.stop_at:
            for m in order:
                p = self.trio.port(m)
                try:
                    if leader:
                        if lease is None:
                            lease = _post(p, "/v3/lease/grant", {"TTL": 20}, 1.0)["ID"]
                        _post(p, "/v3/lease/keepalive", {"ID": lease}, 1.0)
                        body = {"key": self._b64("/service/dpg/leader"), "value": self._b64("p1"), "lease": lease}
                        _post(p, "/v3/kv/put", body, 1.0)
                    _post(
                        p,
                        "/v3/kv/range",
                        {"key": self._b64("/service/dpg/"), "range_end": self._b64("/service/dpg0")},
                        1.0,
                    )
                    self.ops["ok"] += 1
                    break
                except Exception:
                    self.ops["fail"] += 1
            time.sleep(1.0)

    def _watch(self, m: str) -> None:
        while (left := self.stop_at - time.monotonic()) > 0.5:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{self.trio.port(m)}/v3/watch",
                    data=json.dumps({"create_request": {"key": self._b64("/service/dpg/leader")}}).encode(),
                    method="POST",
                )
                with urllib.request.urlopen(req, timeout=left) as r:
                    while time.monotonic() < self.stop_at and r.readline():
                        pass
            except Exception:
                time.sleep(0.5)

    def start(self) -> None:
        others = [m for m in self.trio.members if m != self.leader]
        targets = [
            (self._node, ([self.leader, *others], True)),
            (self._node, ([*others, self.leader], False)),
            (self._node, ([*others[::-1], self.leader], False)),
            *((self._watch, (m,)) for m in self.trio.members),
        ]
        for fn, args in targets:
            t = threading.Thread(target=fn, args=args, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self.stop_at = 0.0


# -- a follower's disk stalled -------------------------------------------------------------------------------------


def storage_daemon_pid(c) -> int:
    """The fuse-overlayfs daemon that serves exactly this container's root filesystem (Docker's fuse-overlayfs
    storage driver, as on this machine): the process whose `upperdir=` is the container's own UpperDir."""
    data = (c.attrs.get("GraphDriver") or {}).get("Data") or {}
    upper = data.get("UpperDir")
    if (c.attrs.get("GraphDriver") or {}).get("Name") != "fuse-overlayfs" or not upper:
        raise RuntimeError(f"{c.name}: a disk stall needs Docker's fuse-overlayfs storage driver")
    hits = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("fuse-overlayfs") and f"upperdir={upper}," in cmd:
            hits.append(int(p))
    if len(hits) != 1:
        raise RuntimeError(f"{c.name}: {len(hits)} fuse-overlayfs processes for its upper dir, need exactly one")
    return hits[0]


class DiskStall:
    """Every file operation of one member's root filesystem (its WAL and db under /data) blocks for `seconds`:
    SIGSTOP to the container's own fuse-overlayfs daemon, SIGCONT from a watchdog process started first (so the
    stall ends even if this process dies) and again on heal. The etcd process itself keeps running."""

    def __init__(self, container, seconds: float) -> None:
        self.c, self.seconds = container, seconds
        self.pid: int | None = None
        self._watchdog: subprocess.Popen | None = None

    def inject(self) -> None:
        self.pid = storage_daemon_pid(self.c)
        self._watchdog = subprocess.Popen(["sh", "-c", f"sleep {self.seconds:.3f}; kill -CONT {self.pid}"])
        os.kill(self.pid, signal.SIGSTOP)

    def heal(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
        if self._watchdog is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(timeout=self.seconds + 5)


# -- the cut -----------------------------------------------------------------------------------------------------


class Cut:
    """The leader cut off from the two other members: iptables DROP/REJECT in the leader's netns (the suite's
    rules, tagged dpg-chaos:<id>), or `docker network disconnect`."""

    def __init__(self, trio: Trio, member: str, how: str, peers: Sequence[str]) -> None:
        if how not in CUTS:
            raise ValueError(f"cut must be one of {CUTS}")
        self.trio, self.member, self.how, self.peers = trio, member, how, list(peers)
        self.fault: Any = None
        self.tag = ""

    def inject(self) -> None:
        c = self.trio.container(self.member)
        if self.how == "disconnect":
            self.fault = network.Disconnected(c, self.trio.net_name)
            self.fault.inject()
            return
        peers = [self.trio.container(p) for p in self.peers]
        if self.how == "iptables-drop":
            self.fault = network.Isolated(c, from_=peers)
            self.fault.inject()
            return
        self.fault = network.Isolated(c, from_=peers)  # only for its id and tag; REJECT rules added here
        self.tag = self.fault.tag
        ips = sorted({ip for p in peers for ip in network.container_ips(p)})
        rules = [[*r[:-1], "REJECT"] for r in network.drop_rules(ips, None, self.tag)]
        self.fault.rules = rules
        self.fault._c = c
        network.add_rules(c, rules, self.tag)

    def heal(self) -> None:
        if self.fault is not None:
            self.fault.heal()


# -- one run -----------------------------------------------------------------------------------------------------


def _loadavg() -> list[float]:
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return []


def _cpu_ticks() -> dict[str, int]:
    """Host-wide CPU ticks from /proc/stat (user..steal) for the run's busy/steal share."""
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()[1:9]
    except OSError:
        return {}
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return dict(zip(names, (int(x) for x in parts), strict=False))


def _cpu_share(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    if not before or not after:
        return {}
    d = {k: after[k] - before[k] for k in before}
    total = sum(d.values()) or 1
    return {
        "busy": round(1 - (d["idle"] + d["iowait"]) / total, 3),
        "steal": round(d["steal"] / total, 3),
        "iowait": round(d["iowait"] / total, 3),
    }


@dataclass
class RunResult:
    run: int
    cut: str
    settings: dict[str, Any]
    variant: str
    started: str
    leader_before: str | None
    term_before: int | None
    since_bootstrap_s: float | None
    cut_exec_s: float | None
    leaderless_log_s: float | None  # cut -> "elected leader" (members' own timestamps)
    leaderless_poll_s: float | None  # cut -> both healthy members report the same new leader (100 ms polling)
    long: bool  # leaderless longer than 3 x election timeout
    new_leader: str | None
    term_after: int | None
    log_counts: dict[str, dict[str, int]]
    log_first: dict[str, float]
    poll_trace: list[list[Any]]  # [s after cut, member, leader, term] whenever a view changed
    ss_before: dict[str, list[str]]
    ss_after: dict[str, list[str]]
    loadavg: dict[str, list[float]]
    cpu: dict[str, float]
    load_ops: dict[str, int] | None
    healed: bool
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"dataset": "etcd-leaderless", **asdict(self)}


class LeaderlessExperiment:
    def __init__(
        self,
        client,
        settings: Settings,
        cut: str = "iptables-drop",
        *,
        wait_after_bootstrap_s: float = 5.0,
        load: bool = False,
        prior_follower_cut_s: float = 0.0,
        reuse: bool = False,
        keep_logs: Path | None = None,
        stall_follower_s: float = 0.0,
    ) -> None:
        self.stall_s = stall_follower_s
        self.trio = Trio(client, settings)
        self.keep_logs = keep_logs
        self.settings, self.cut = settings, cut
        self.wait_after_bootstrap_s = wait_after_bootstrap_s
        self.load, self.prior = load, prior_follower_cut_s
        self.reuse = reuse
        self._bootstrapped: float | None = None
        self.prior_follower: str | None = None

    def variant(self) -> str:
        s = self.settings
        parts = [self.cut, f"hb{s.heartbeat_ms}/el{s.election_ms}"]
        if not s.pre_vote:
            parts.append("pre-vote=false")
        if self.load:
            parts.append("patroni-like load")
        if self.prior:
            parts.append(f"after a follower partitioned {self.prior:g}s")
        if self.reuse:
            parts.append("reused cluster")
        if self.stall_s:
            parts.append(f"one follower's disk stalled {self.stall_s:g}s from 1 s before the cut")
        return ", ".join(parts)

    def run(self, n: int) -> RunResult:
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        la = {"start": _loadavg()}
        fresh = not self.reuse or self._bootstrapped is None or self.trio.wait_leader(within=2) is None
        if fresh:
            self.trio.start()
            self._bootstrapped = time.time()
        found = self.trio.wait_leader(within=30)
        if found is None:
            return self._failed(n, started, la, "no leader after bootstrap")
        leader, term = found
        others = [m for m in self.trio.members if m != leader]
        load = None
        if self.load:
            load = PatroniLikeLoad(self.trio, leader, seconds=MAX_WAIT_S + 30)
            load.start()
        if self.prior:
            # the suite's test_minority_majority_split, which ran just before the long leaderless periods in CI:
            # one follower partitioned from the two others (rules in every member's netns) for ttl + 8 s, healed
            c = self.trio.container
            pc = network.Partitioned([[c(others[0])], [c(leader), c(others[1])]])
            pc.inject()
            time.sleep(self.prior)
            pc.heal()
            self.prior_follower = others[0]
            if self.trio.wait_leader(within=15) is None:
                return self._failed(n, started, la, "no leader after the prior follower cut")
        time.sleep(self.wait_after_bootstrap_s)
        found = self.trio.wait_leader(within=10)
        if found is None:
            return self._failed(n, started, la, "no leader before the cut")
        leader, term = found
        others = [m for m in self.trio.members if m != leader]
        ss_before = {m: self.trio.ss(m) for m in self.trio.members}
        cpu0 = _cpu_ticks()
        la["cut"] = _loadavg()
        cut = Cut(self.trio, leader, self.cut, others)
        stall = DiskStall(self.trio.container(others[0]), self.stall_s) if self.stall_s else None
        if stall:
            stall.inject()
            time.sleep(1.0)  # Patroni-like writes reach the stalled member: its raft loop blocks in a WAL write
        t_cut = time.time()
        healed, err = False, None
        trace: list[list[Any]] = []
        poll_s = None
        hex_ids = self.trio.hex_ids()
        dec_ids = {v: k for k, v in self.trio.ids().items()}
        try:
            cut.inject()
            cut_exec = round(time.time() - t_cut, 3)
            last: dict[str, tuple] = {}
            while time.time() - t_cut < MAX_WAIT_S:
                view = {}
                for m in others:
                    s = self.trio.status(m)
                    lead = dec_ids.get(s.get("leader", "0")) if s else None
                    view[m] = (lead, int(s["raftTerm"]) if s else None)
                    if view[m] != last.get(m):
                        trace.append([round(time.time() - t_cut, 2), m, *view[m]])
                        last[m] = view[m]
                leads = {v[0] for v in view.values()}
                if len(leads) == 1 and None not in leads and leader not in leads:
                    poll_s = round(time.time() - t_cut, 2)
                    break
                time.sleep(POLL_S)
            if stall:
                stall.heal()
            time.sleep(0.5)  # the last lines reach the logs
            ss_after = {m: self.trio.ss(m) for m in others}
            cpu = _cpu_share(cpu0, _cpu_ticks())
            la["end"] = _loadavg()
        except Exception as e:  # recorded, then healed below
            err, cut_exec, ss_after, cpu = f"{type(e).__name__}: {e}", None, {}, {}
        finally:
            if stall:
                stall.heal()
            if load:
                load.stop()
            try:
                cut.heal()
                healed = self.trio.wait_leader(within=30) is not None
            except Exception as e:
                err = (err or "") + f" heal: {type(e).__name__}: {e}"
        texts = {m: self.trio.logs(m) for m in self.trio.members}
        events = [e for m in others for e in parse_log(m, texts[m])]
        summ = summarise(events, cut_wall=t_cut, cut_term=term, healthy=others)
        leaderless = summ.leaderless_s
        ref = leaderless if leaderless is not None else poll_s
        long = ref is None or ref > 3 * self.settings.election_ms / 1000
        kept = self._keep_logs(n, texts, t_cut) if long and self.keep_logs else None
        return RunResult(
            run=n,
            cut=self.cut,
            settings=asdict(self.settings),
            variant=self.variant(),
            started=started,
            leader_before=leader,
            term_before=term,
            since_bootstrap_s=round(t_cut - self._bootstrapped, 1) if self._bootstrapped else None,
            cut_exec_s=cut_exec,
            leaderless_log_s=leaderless,
            leaderless_poll_s=poll_s,
            long=long,
            new_leader=hex_ids.get(summ.new_leader or "", summ.new_leader),
            term_after=summ.new_term,
            log_counts=summ.counts,
            log_first=summ.first,
            poll_trace=trace,
            ss_before=ss_before,
            ss_after=ss_after,
            loadavg=la,
            cpu=cpu,
            load_ops=dict(load.ops) if load else None,
            healed=healed,
            error=err,
            extra={
                k: v
                for k, v in (
                    ("logs", kept),
                    ("prior_partitioned", self.prior_follower),
                    ("stalled", stall and others[0]),
                )
                if v
            },
        )

    def _keep_logs(self, n: int, texts: dict[str, str], t_cut: float) -> str:
        """A long run's member logs (from 5 s before the cut) go to keep_logs/<stamp>-run<n>-<member>.log."""
        self.keep_logs.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(t_cut))
        for m, text in texts.items():
            lines = [ln for ln in text.splitlines() if (e := _line_ts(ln)) is None or e >= t_cut - 5]
            (self.keep_logs / f"{stamp}-run{n}-{m}.log").write_text("\n".join(lines) + "\n")
        return str(self.keep_logs / f"{stamp}-run{n}-*.log")

    def _failed(self, n: int, started: str, la: dict, why: str) -> RunResult:
        return RunResult(
            n, self.cut, asdict(self.settings), self.variant(), started, None, None, None, None, None, None,
            False, None, None, {}, {}, [], {}, {}, la, {}, None, False, why,
        )  # fmt: skip

    def close(self) -> None:
        self.trio.remove()
        self.trio.remove_network()
