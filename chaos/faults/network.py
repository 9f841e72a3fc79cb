"""Network faults: iptables isolation/partitions inside container netns, and docker network disconnect.

Every iptables rule added here carries `-m comment --comment dpg-chaos:<fault-id>`, so a fault heals
exactly its own rules and `python -m chaos heal` finds what a killed run left behind.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Iterable, Sequence

from topology.names import NETWORK

from . import netns
from . import rules as reaper
from .base import (
    RULE_TAG,
    Fault,
    FaultError,
    FaultUnsupported,
    Target,
    names,
    reload_or_none,
    resolve,
    target_name,
)
from .registry import HealError


def container_ips(c) -> list[str]:
    """IPv4 addresses of a container on all its networks."""
    nets = (c.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return sorted({n["IPAddress"] for n in nets.values() if n.get("IPAddress")})


def peer_ips(peer: Target) -> list[str]:
    """A peer given as an IP (or CIDR) stays as is; a container becomes its IPv4 addresses."""
    if isinstance(peer, str):
        try:
            return (
                [str(ipaddress.ip_network(peer, strict=False))] if "/" in peer else ([str(ipaddress.ip_address(peer))])
            )
        except ValueError:
            pass
    c = resolve(peer, touch=False)  # only its address is read; the rules go into the isolated container
    ips = container_ips(c)
    if not ips:
        raise FaultError(f"peer {c.name} has no IPv4 address (not running or not on a network?)")
    return ips


def network_neighbours(c) -> list[str]:
    """IPv4 addresses of every other container attached to the networks `c` is on."""
    client = c.client  # the engine that runs c (a target's container may live on a remote one)
    ips: set[str] = set()
    own = set(container_ips(c))
    for net_name in (c.attrs.get("NetworkSettings") or {}).get("Networks") or {}:
        try:
            net = client.networks.get(net_name)
        except Exception:  # host/none networks and the like
            continue
        for cid, ep in (net.attrs.get("Containers") or {}).items():
            ip = (ep.get("IPv4Address") or "").split("/")[0]
            if ip and cid != c.id and ip not in own:
                ips.add(ip)
    return sorted(ips)


def drop_rules(peers: Iterable[str], ports: Sequence[int] | None, tag: str) -> list[list[str]]:
    """iptables argv tails (after `iptables -w 5`) that drop traffic to/from `peers` (optionally ports)."""
    comment = ["-m", "comment", "--comment", tag]
    rules: list[list[str]] = []
    for ip in peers:
        if ports:
            for p in ports:
                for flag in ("--dport", "--sport"):
                    rules.append(["-I", "INPUT", "-s", ip, "-p", "tcp", flag, str(p), *comment, "-j", "DROP"])
                    rules.append(["-I", "OUTPUT", "-d", ip, "-p", "tcp", flag, str(p), *comment, "-j", "DROP"])
        else:
            rules.append(["-I", "INPUT", "-s", ip, *comment, "-j", "DROP"])
            rules.append(["-I", "OUTPUT", "-d", ip, *comment, "-j", "DROP"])
    return rules


def add_rules(c, rules: list[list[str]], tag: str) -> None:
    """Add all rules in one exec (`set -e`: stops at the first failure; the caller heals by tag),
    then check they are all in place: a fault must not claim a cut that did not happen."""
    if not rules:
        return
    script = "set -e\n" + "\n".join(shlex.join(["iptables", "-w", "5", *r]) for r in rules)
    try:
        netns.run(c, ["sh", "-c", script], what="adding iptables rules")
    except FaultUnsupported:
        raise
    except FaultError as e:
        raise FaultError(f"{e} (the image needs iptables and the container cap_add NET_ADMIN)") from e
    _, listing = reaper.iptables_listing(c)
    found = len(reaper.tagged_rule_deletions(listing, tag))
    if found != len(rules):
        raise FaultError(f"{c.name}: {found} of {len(rules)} iptables rules tagged {tag} in place")


def remove_rules(c, tag: str) -> list[str]:
    """Delete this fault's rules in `c`; nothing to do when the container is gone or not running
    (its network namespace, and the rules with it, died with the container)."""
    c = reload_or_none(c)
    if c is None or c.status not in ("running", "paused"):
        return []
    if c.status == "paused":
        raise HealError(f"{c.name} is paused: cannot remove iptables rules {tag} (unpause it first)")
    return reaper.delete_tagged_rules(c, tag)


def _ports(ports: int | Iterable[int] | None) -> tuple[int, ...] | None:
    if ports is None:
        return None
    ps = (ports,) if isinstance(ports, int) else tuple(int(p) for p in ports)
    bad = [p for p in ps if not 0 < p < 65536]
    if bad:
        raise ValueError(f"bad port(s) {bad}")
    return ps or None


class Isolated(Fault):
    """Drop all traffic between a container and its peers (iptables in its netns); heal deletes those rules."""

    def __init__(
        self,
        container: Target,
        from_: Sequence[Target] | None = None,
        ports: int | Iterable[int] | None = None,
        *,
        history=None,
    ) -> None:
        super().__init__(history=history)
        self.target = container
        self.peers = list(from_) if from_ is not None else None  # None: every network neighbour
        self.ports = _ports(ports)
        self.tag = f"{RULE_TAG}:{self.id}"
        self.rules: list[list[str]] = []
        self._c = None
        self._removed: list[str] = []

    def describe(self) -> str:
        peers = names(self.peers) if self.peers is not None else "all network neighbours"
        ports = f", ports={','.join(map(str, self.ports))}" if self.ports else ""
        return f"Isolated({target_name(self.target)} from {peers}{ports})"

    def targets(self) -> str:
        return target_name(self.target)

    def inject(self) -> None:
        c = resolve(self.target)
        ips = network_neighbours(c) if self.peers is None else sorted({ip for p in self.peers for ip in peer_ips(p)})
        if not ips:
            raise FaultError(f"{self.describe()}: no peer address to isolate from")
        self.rules = drop_rules(ips, self.ports, self.tag)
        self._c = c
        add_rules(c, self.rules, self.tag)

    def heal(self) -> None:
        if self._c is not None:
            self._removed = remove_rules(self._c, self.tag)

    def undo_record(self) -> dict:
        return {"containers": [target_name(self.target)], "tag": self.tag}

    def injected_detail(self) -> str:
        return f"{self.describe()}: {len(self.rules)} rules tagged {self.tag}"

    def healed_detail(self) -> str:
        return f"{self.describe()}: removed {len(self._removed)} rules tagged {self.tag}"


class Partitioned(Fault):
    """Split containers into groups that cannot reach each other (iptables in each netns); heal deletes the rules."""

    def __init__(
        self, groups: Sequence[Sequence[Target]], *, ports: int | Iterable[int] | None = None, history=None
    ) -> None:
        super().__init__(history=history)
        self.groups = [list(g) for g in groups]
        if len([g for g in self.groups if g]) < 2:
            raise ValueError("Partitioned needs at least two non-empty groups")
        flat = [target_name(t) for g in self.groups for t in g]
        if len(flat) != len(set(flat)):
            raise ValueError(f"a container appears in more than one group: {flat}")
        self.ports = _ports(ports)
        self.tag = f"{RULE_TAG}:{self.id}"
        self._members: list = []  # resolved containers that may carry rules
        self._removed = 0

    def describe(self) -> str:
        return "Partitioned(" + " | ".join(names(g) for g in self.groups) + ")"

    def targets(self) -> str:
        return "|".join(names(g) for g in self.groups)

    def inject(self) -> None:
        resolved = [[resolve(t) for t in g] for g in self.groups]  # fail before any rule is added
        ips = [[ip for c in g for ip in container_ips(c)] for g in resolved]
        plan = []
        for gi, group in enumerate(resolved):
            others = sorted({ip for gj, g in enumerate(ips) if gj != gi for ip in g})
            for c in group:
                plan.append((c, drop_rules(others, self.ports, self.tag)))
        for c, rules in plan:
            self._members.append(c)
            add_rules(c, rules, self.tag)

    def heal(self) -> None:
        errors = []
        for c in self._members:
            try:
                self._removed += len(remove_rules(c, self.tag))
            except Exception as e:  # heal every member, report all failures
                errors.append(f"{c.name}: {e}")
        if errors:
            raise HealError(f"{self.describe()}: " + "; ".join(errors))

    def undo_record(self) -> dict:
        return {"containers": [target_name(t) for g in self.groups for t in g], "tag": self.tag}

    def healed_detail(self) -> str:
        return f"{self.describe()}: removed {self._removed} rules tagged {self.tag}"


class Disconnected(Fault):
    """Detach a container from a docker network; heal reconnects it with the same IPv4 address and aliases."""

    def __init__(self, container: Target, network: str = NETWORK, *, history=None) -> None:
        super().__init__(history=history)
        self.target = container
        self.network = network
        self.endpoint: dict = {}  # what to restore: ipv4_address, ipv6_address, aliases, links
        self._c = None
        self._net = None
        self._healed = ""

    def describe(self) -> str:
        return f"Disconnected({target_name(self.target)} from {self.network})"

    def targets(self) -> str:
        return target_name(self.target)

    def inject(self) -> None:
        c = resolve(self.target)
        ep = ((c.attrs.get("NetworkSettings") or {}).get("Networks") or {}).get(self.network)
        if ep is None:
            raise FaultError(f"{c.name} is not connected to network {self.network}")
        ipam = ep.get("IPAMConfig") or {}
        short_ids = {c.id[:12], c.id}
        self.endpoint = {
            "ipv4_address": ipam.get("IPv4Address") or ep.get("IPAddress") or None,
            "ipv6_address": ipam.get("IPv6Address") or ep.get("GlobalIPv6Address") or None,
            # docker re-adds the container's short id alias by itself
            "aliases": [a for a in (ep.get("Aliases") or []) if a not in short_ids] or None,
            "links": ep.get("Links") or None,
        }
        self._net = c.client.networks.get(ep.get("NetworkID") or self.network)
        self._c = c
        self._net.disconnect(c)

    def heal(self) -> None:
        if self._c is None:
            return
        c = reload_or_none(self._c)
        if c is None:
            self._healed = "container is gone"
            return
        if self.network in ((c.attrs.get("NetworkSettings") or {}).get("Networks") or {}):
            self._healed = "already connected"
            return
        kwargs = {k: v for k, v in self.endpoint.items() if v}
        self._net.connect(c, **kwargs)
        self._healed = f"reconnected with {kwargs}"

    def undo_record(self) -> dict:
        return {"container": target_name(self.target), "network": self.network, "endpoint": self.endpoint}

    def injected_detail(self) -> str:
        return f"{self.describe()}: was {self.endpoint}"

    def healed_detail(self) -> str:
        return f"{self.describe()}: {self._healed or 'nothing to do'}"
