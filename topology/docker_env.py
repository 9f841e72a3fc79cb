"""The shared Docker resources: the external network and reaping what earlier runs left behind."""
from __future__ import annotations

import ipaddress

import docker
import docker.errors

from .errors import TopologyError
from .names import MANAGED_LABEL, NETWORK, SUBNET


def ip_prefix() -> str:
    """First three octets of the subnet (compose files append the seed's host numbers: .2, .5, .100 ...)."""
    try:
        net = ipaddress.ip_network(SUBNET)
    except ValueError:
        raise TopologyError(f"DPG_SUBNET={SUBNET!r} is not a network like 172.25.0.0/16") from None
    if net.version != 4 or net.prefixlen > 24:
        raise TopologyError(f"DPG_SUBNET={SUBNET} must be an IPv4 network of /24 or larger")
    return ".".join(str(net.network_address).split(".")[:3])


def ensure_network(client: docker.DockerClient) -> None:
    try:
        net = client.networks.get(NETWORK)
    except docker.errors.NotFound:
        try:
            client.networks.create(NETWORK, driver="bridge", labels={MANAGED_LABEL: "true"},
                                   ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                                       subnet=SUBNET, gateway=f"{ip_prefix()}.1")]))
        except docker.errors.APIError as exc:
            raise TopologyError(f"cannot create network {NETWORK} ({SUBNET}): {exc.explanation}") from None
        return
    subnets = [c.get("Subnet") for c in (net.attrs.get("IPAM", {}).get("Config") or [])]
    if SUBNET not in subnets:
        raise TopologyError(f"network {NETWORK} exists with subnet {subnets}, expected {SUBNET}")


def managed_containers(client: docker.DockerClient, stack: str | None = None):
    labels = [f"{MANAGED_LABEL}=true"] + ([f"io.dpg-chaos.stack={stack}"] if stack else [])
    return client.containers.list(all=True, filters={"label": labels})


def remove_everything(client: docker.DockerClient, *, keep_network: bool = False) -> list[str]:
    """Remove every container, volume and network of ours (by label): a clean slate for CI and `down`."""
    removed = []
    for c in managed_containers(client):
        c.remove(force=True, v=True)
        removed.append(f"container {c.name}")
    for v in client.volumes.list(filters={"label": f"{MANAGED_LABEL}=true"}):
        v.remove(force=True)
        removed.append(f"volume {v.name}")
    if not keep_network:
        for n in client.networks.list(filters={"label": f"{MANAGED_LABEL}=true"}):
            try:
                n.remove()
                removed.append(f"network {n.name}")
            except docker.errors.APIError as exc:
                raise TopologyError(f"cannot remove network {n.name}: {exc.explanation}") from None
    return removed
