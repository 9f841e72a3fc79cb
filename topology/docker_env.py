"""The shared Docker resources: the external network (created with our labels); what is ours lives in ownership."""

from __future__ import annotations

import ipaddress

import docker
import docker.errors

from .errors import TopologyError
from .names import NETWORK, SUBNET
from .ownership import creation_labels, managed_containers, remove_everything

__all__ = ["ensure_network", "ip_prefix", "managed_containers", "remove_everything"]


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
            client.networks.create(
                NETWORK,
                driver="bridge",
                labels=creation_labels(),
                ipam=docker.types.IPAMConfig(
                    pool_configs=[docker.types.IPAMPool(subnet=SUBNET, gateway=f"{ip_prefix()}.1")]
                ),
            )
        except docker.errors.APIError as exc:
            raise TopologyError(f"cannot create network {NETWORK} ({SUBNET}): {exc.explanation}") from None
        return
    subnets = [c.get("Subnet") for c in (net.attrs.get("IPAM", {}).get("Config") or [])]
    if SUBNET not in subnets:
        raise TopologyError(f"network {NETWORK} exists with subnet {subnets}, expected {SUBNET}")
