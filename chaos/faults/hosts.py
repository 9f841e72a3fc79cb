"""Host-level faults (the multi-host mode): a whole machine crashes, freezes, is cut off, loses packets or restarts.

A host here is a Docker-in-Docker node, a container on this machine's engine (the inventory's `hosts:` section names
it); what happens to it happens to every container on it at once, as to a real machine: `docker kill` of the node is
a power cut, `docker pause` a frozen machine (its kernel and dockerd included), iptables in the node's own network
namespace a cut between machines (the overlay's VXLAN packets are the ones dropped).

Each heals like every other fault (finally, atexit, SIGINT/SIGTERM, the journal for `chaos heal`). A crashed host
comes back as after a reboot: the node starts, its engine answers, and the containers that ran on it before the
crash are started again (nothing inside restarts by itself: the inner containers carry no restart policy).

No netem in this kernel: latency between hosts cannot be added (`HostLatency` says so); packet loss can, with
iptables' `statistic` match (`HostPacketLoss`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from topology.inventory import current, engines

from . import declared
from .base import RULE_TAG, Fault, FaultError, FaultUnsupported, reload_or_none
from .containers import ensure_running, unpause
from .network import add_rules, drop_rules, remove_rules

log = logging.getLogger("dpg.chaos")


def node_container(host: str, *, touch: bool = True):
    """The container that IS `host` (on the local engine), checked against the running test's declaration."""
    import docker

    inv = current()
    node = inv.hosts.get(host)
    if node is None:
        known = ", ".join(inv.hosts) or "none"
        raise FaultUnsupported(
            f"inventory {inv.name} names no container for host {host!r} (hosts: {known}): host faults need the host "
            "to be a container of this machine (the multi-host mode's nodes)"
        )
    if touch:
        declared.check_role(f"host:{host}", node.container)
    try:
        return docker.from_env(timeout=60).containers.get(node.container)
    except docker.errors.NotFound:
        raise FaultError(f"host {host}: no container {node.container}") from None


def host_address(host: str) -> str:
    node = current().hosts.get(host)
    if node is None or not node.address:
        raise FaultUnsupported(f"host {host}: the inventory gives no address for it")
    return node.address


def containers_of(host: str) -> list[str]:
    """Names of the running containers of ours on a host's engine (what a reboot has to bring back)."""
    from topology.ownership import managed_containers

    client = engines().client(host)
    return sorted(c.name for c in managed_containers(client) if c.status == "running")


def wait_engine(host: str, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            engines().client(host).ping()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise FaultError(f"host {host}: its engine did not answer within {within:.0f}s: {exc}") from None
            time.sleep(1)


def reboot(host: str, was_running: Sequence[str]) -> str:
    """Bring a host back as after a reboot: the node, its engine, then the containers that ran on it."""
    c = reload_or_none(node_container(host, touch=False))
    if c is None:
        return f"host {host} is gone"
    done = ensure_running(c)
    wait_engine(host)
    client = engines().client(host)
    started = []
    for name in was_running:
        try:
            if ensure_running(client.containers.get(name)) == "started":
                started.append(name)
        except Exception as exc:  # one that cannot start must not keep the others down
            log.warning("host %s: %s not started again: %s", host, name, exc)
    return f"host {done or 'running'}; started {', '.join(started) or 'nothing'}"


class HostFault(Fault):
    def __init__(self, host: str, *, history=None) -> None:
        super().__init__(history=history)
        self.host = host
        self._healed = ""

    def targets(self) -> str:
        return self.host

    def healed_detail(self) -> str:
        return f"{self.describe()}: {self._healed or 'nothing to do'}"


class HostCrashed(HostFault):
    """Power cut: every container on the host dies at once (`docker kill` of the node); heal reboots it."""

    def __init__(self, host: str, *, history=None) -> None:
        super().__init__(host, history=history)
        self.was_running: list[str] = []

    def describe(self) -> str:
        return f"HostCrashed({self.host})"

    def inject(self) -> None:
        c = node_container(self.host)
        self.was_running = containers_of(self.host)
        c.kill()

    def heal(self) -> None:
        self._healed = reboot(self.host, self.was_running)

    def undo_record(self) -> dict:
        return {"host": self.host, "reboot": self.was_running}


class HostFrozen(HostFault):
    """The whole machine stops: every container on it, then the host itself (its dockerd, containerd, the embedded
    DNS); heal resumes the host, then its containers.

    Pausing the node alone is not enough here: a nested container's processes live in cgroups of their own beside
    the node's (the node shares the machine's cgroup tree), so `docker pause` of the node froze dockerd but left
    Patroni and PostgreSQL on it running (measured: the "frozen" leader kept writing its log, its DNS failing)."""

    def __init__(self, host: str, *, history=None) -> None:
        super().__init__(host, history=history)
        self.frozen: list[str] = []

    def describe(self) -> str:
        return f"HostFrozen({self.host})"

    def inject(self) -> None:
        self._c = node_container(self.host)
        client = engines().client(self.host)
        for name in containers_of(self.host):
            client.containers.get(name).pause()
            self.frozen.append(name)
        self._c.pause()

    def heal(self) -> None:
        c = getattr(self, "_c", None)
        done = []
        if c is not None and unpause(c):
            done.append("host resumed")
        if self.frozen:
            client = engines().client(self.host)
            resumed = [n for n in self.frozen if unpause(client.containers.get(n))]
            if resumed:
                done.append(f"containers resumed: {', '.join(resumed)}")
        self._healed = "; ".join(done)

    def undo_record(self) -> dict:
        return {"host": self.host, "unfreeze": self.frozen}


class HostsPartitioned(Fault):
    """Groups of hosts that cannot reach each other (iptables in each node's namespace); heal deletes the rules.
    One host against the others is a host isolated; two groups of sizes 1/2 are the minority/majority split."""

    def __init__(self, groups: Sequence[Sequence[str]], *, history=None) -> None:
        super().__init__(history=history)
        self.groups = [list(g) for g in groups]
        if len([g for g in self.groups if g]) < 2:
            raise ValueError("HostsPartitioned needs at least two non-empty groups of hosts")
        self.tag = f"{RULE_TAG}:{self.id}"
        self._nodes: list = []
        self._removed = 0

    def describe(self) -> str:
        return "HostsPartitioned(" + " | ".join(",".join(g) for g in self.groups) + ")"

    def targets(self) -> str:
        return "|".join(",".join(g) for g in self.groups)

    def inject(self) -> None:
        plan = []
        for gi, group in enumerate(self.groups):
            others = [host_address(h) for gj, g in enumerate(self.groups) if gj != gi for h in g]
            for h in group:
                plan.append((node_container(h), drop_rules(others, None, self.tag)))
        for c, rules in plan:
            self._nodes.append(c)
            add_rules(c, rules, self.tag)

    def heal(self) -> None:
        errors = []
        for c in self._nodes:
            try:
                self._removed += len(remove_rules(c, self.tag))
            except Exception as e:
                errors.append(f"{c.name}: {e}")
        if errors:
            from .registry import HealError

            raise HealError(f"{self.describe()}: " + "; ".join(errors))

    def undo_record(self) -> dict:
        return {"containers": [current().hosts[h].container for g in self.groups for h in g], "tag": self.tag}

    def healed_detail(self) -> str:
        return f"{self.describe()}: removed {self._removed} rules tagged {self.tag}"


class HostIsolated(HostsPartitioned):
    """One host cut off from every other host (the others still see each other)."""

    def __init__(self, host: str, *, history=None) -> None:
        others = [h for h in current().hosts if h != host]
        super().__init__([[host], others], history=history)
        self.host = host

    def describe(self) -> str:
        return f"HostIsolated({self.host})"


class HostPacketLoss(Fault):
    """A share of the packets between two hosts dropped, both ways (iptables `statistic` in the first host's
    namespace); heal deletes the rules. The loss that netem would give, without netem."""

    def __init__(self, a: str, b: str, probability: float = 0.1, *, history=None) -> None:
        super().__init__(history=history)
        if not 0 < probability < 1:
            raise ValueError(f"probability {probability} must be between 0 and 1")
        self.a, self.b, self.p = a, b, probability
        self.tag = f"{RULE_TAG}:{self.id}"
        self._c = None
        self._removed: list[str] = []

    def describe(self) -> str:
        return f"HostPacketLoss({self.a} <-> {self.b}, {self.p:.0%})"

    def targets(self) -> str:
        return f"{self.a},{self.b}"

    def inject(self) -> None:
        c = node_container(self.a)
        peer = host_address(self.b)
        stat = ["-m", "statistic", "--mode", "random", "--probability", f"{self.p:.3f}"]
        comment = ["-m", "comment", "--comment", self.tag]
        rules = [["-I", "INPUT", "-s", peer, *stat, *comment, "-j", "DROP"],
                 ["-I", "OUTPUT", "-d", peer, *stat, *comment, "-j", "DROP"]]  # fmt: skip
        self._c = c
        add_rules(c, rules, self.tag)

    def heal(self) -> None:
        if self._c is not None:
            self._removed = remove_rules(self._c, self.tag)

    def undo_record(self) -> dict:
        return {"containers": [current().hosts[self.a].container], "tag": self.tag}


class HostLatency(Fault):
    """Latency between hosts: not possible on this machine's kernel (no netem, no `tc qdisc ... netem`)."""

    def __init__(self, a: str, b: str, delay_ms: int = 50, *, history=None) -> None:
        super().__init__(history=history)
        self.a, self.b, self.delay_ms = a, b, delay_ms

    def describe(self) -> str:
        return f"HostLatency({self.a} <-> {self.b}, {self.delay_ms} ms)"

    def inject(self) -> None:
        raise FaultUnsupported(
            "latency between hosts needs netem, which this kernel lacks; packet loss (HostPacketLoss) and latency "
            "on a TCP route (Toxic through the fault proxy) are what works here"
        )

    def heal(self) -> None:
        return


class HostsRestarted(Fault):
    """The maintenance case: every host restarted, one after the other (graceful `docker stop` of the node, so
    dockerd stops its containers with SIGTERM; then a reboot). `between(host)` runs after each host is back (the
    experiment waits there until the cluster is healthy). Heal: every host running with its containers."""

    def __init__(self, hosts: Sequence[str] | None = None, *, between: Callable[[str], None] | None = None,
                 before: Callable[[str], None] | None = None, stop_timeout: int = 30,
                 history=None) -> None:  # fmt: skip
        super().__init__(history=history)
        self.hosts = list(hosts) if hosts is not None else list(current().hosts)
        self.between = between
        self.before = before  # the operator's step before a host goes down (e.g. move the leader off it)
        self.stop_timeout = stop_timeout
        self.was_running: dict[str, list[str]] = {}
        self.restarted: list[str] = []

    def describe(self) -> str:
        return f"HostsRestarted({', '.join(self.hosts)})"

    def targets(self) -> str:
        return ",".join(self.hosts)

    def inject(self) -> None:
        for host in self.hosts:
            c = node_container(host)
            if self.before is not None:
                self.before(host)
            self.was_running[host] = containers_of(host)
            if self.history is not None:
                self.history.mark("host-restart", host, "graceful stop")
            c.stop(timeout=self.stop_timeout)
            reboot(host, self.was_running[host])
            if self.history is not None:
                self.history.mark("host-back", host, "engine and containers up")
            self.restarted.append(host)
            if self.between is not None:
                self.between(host)

    def heal(self) -> None:
        for host in self.hosts:
            reboot(host, self.was_running.get(host, ()))

    def undo_record(self) -> dict:
        return {"reboot_hosts": {h: self.was_running.get(h, []) for h in self.hosts}}

    def injected_detail(self) -> str:
        return f"{self.describe()}: restarted {', '.join(self.restarted)}"
