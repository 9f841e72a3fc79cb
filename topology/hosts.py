"""Docker hosts on this machine: Docker-in-Docker nodes, each a Docker Engine of its own reached over tcp on
127.0.0.1 (the multi-host mode; the remote-engine target test).

The recipe is `shared/notes/multi-host-on-one-machine.md` (measured here): no --privileged (refused: the daemon's
bounding set lacks CAP_SYS_RESOURCE), but every other capability, /dev/fuse, the host's cgroup tree read-write,
seccomp/apparmor/systempaths unconfined, and a fresh volume for /var/lib/docker (an old one keeps a stale swarm
state). The repository's compose/ directory is mounted at the same path inside, so the compose files' bind mounts
(haproxy.cfg, pgbouncer.ini, traefik.yml) resolve on the node as they do here.

Every node, its volume and its network carry this project's labels, set at creation (topology.ownership), so a
clean slate finds a node a killed run left behind. Images go in with `docker save | docker -H ... load`, only
those whose id differs on the node.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

import docker
import docker.errors

from .errors import TopologyError
from .names import MANAGED_LABEL
from .ownership import creation_labels, is_ours
from .stacks import COMPOSE_DIR

NODE_IMAGE = "dpg/node:latest"
NODE_LABEL = "io.dpg-chaos.node"
NODE_API_PORT = 2375


@dataclass(frozen=True)
class Node:
    name: str  # container name on the local engine
    api_port: int  # NODE_API_PORT published on 127.0.0.1
    ip: str  # address on the nodes' network

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.api_port}"

    def client(self, timeout: int = 120) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=timeout)


def say(msg: str) -> None:
    print(f"[hosts] {msg}", flush=True)


def _network(client: docker.DockerClient, name: str, subnet: str) -> None:
    try:
        client.networks.get(name)
    except docker.errors.NotFound:
        client.networks.create(
            name,
            driver="bridge",
            labels=creation_labels("hosts"),
            ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)]),
        )


def start_node(
    client: docker.DockerClient,
    name: str,
    *,
    api_port: int,
    network: str,
    subnet: str,
    ip: str,
    publish: dict[int, int] | None = None,
    stack: str = "hosts",
    mounts: tuple[str, ...] = (),
) -> Node:
    """Start one node container (ours) and wait until its engine answers; `publish` maps node ports to 127.0.0.1,
    `mounts` are host directories made visible inside at the same path (read-only)."""
    try:
        client.images.get(NODE_IMAGE)
    except docker.errors.ImageNotFound:
        raise TopologyError(f"image {NODE_IMAGE} missing: run `python -m topology build node`") from None
    _network(client, network, subnet)
    volume = client.volumes.create(f"{name}-docker", labels=creation_labels(stack))
    ports = {f"{NODE_API_PORT}/tcp": ("127.0.0.1", api_port)}
    ports.update({f"{p}/tcp": ("127.0.0.1", h) for p, h in (publish or {}).items()})
    labels = {**creation_labels(stack), NODE_LABEL: name}
    api = client.api
    host_config = api.create_host_config(
        cap_add=["ALL"],
        cap_drop=["SYS_RESOURCE"],
        # systempaths=unconfined is the CLI's spelling of empty MaskedPaths/ReadonlyPaths (set below): the API
        # refuses it as a security option
        security_opt=["seccomp=unconfined", "apparmor=unconfined"],
        devices=["/dev/fuse:/dev/fuse:rwm"],
        tmpfs={"/run": ""},
        binds={
            "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
            volume.name: {"bind": "/var/lib/docker", "mode": "rw"},
            str(COMPOSE_DIR): {"bind": str(COMPOSE_DIR), "mode": "ro"},
            **{m: {"bind": m, "mode": "ro"} for m in mounts},  # generated configs, at the same path inside
        },
        port_bindings={int(k.split("/")[0]): v for k, v in ports.items()},
        network_mode=network,
    )
    host_config["MaskedPaths"] = []
    host_config["ReadonlyPaths"] = []
    created = api.create_container(
        NODE_IMAGE,
        name=name,
        hostname=name,
        labels=labels,
        environment={"DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE": "1"},
        ports=[int(k.split("/")[0]) for k in ports],
        host_config=host_config,
        networking_config=api.create_networking_config({network: api.create_endpoint_config(ipv4_address=ip)}),
    )
    c = client.containers.get(created["Id"])
    c.start()
    node = Node(name, api_port, ip)
    wait_engine(node)
    return node


def wait_engine(node: Node, *, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            node.client(timeout=5).ping()
            return
        except Exception as exc:  # dockerd still starting
            last = exc
            time.sleep(1)
    raise TopologyError(f"the engine of node {node.name} ({node.url}) did not answer within {within:.0f}s: {last}")


def load_images(node: Node, tags: list[str], *, local: docker.DockerClient | None = None) -> list[str]:
    """Copy images into a node, only those whose id differs there; returns the tags copied."""
    local = local or docker.from_env(timeout=300)
    inner = node.client(timeout=600)
    copied = []
    for tag in tags:
        want = local.images.get(tag).id
        try:
            if inner.images.get(tag).id == want:
                continue
        except docker.errors.ImageNotFound:
            pass
        t0 = time.monotonic()
        save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
        load = subprocess.run(
            ["docker", "-H", node.url, "load", "-q"], stdin=save.stdout, capture_output=True, text=True, timeout=900
        )
        save.wait(timeout=60)
        if load.returncode != 0 or save.returncode != 0:
            raise TopologyError(f"loading {tag} into {node.name} failed: {load.stderr.strip()[-300:]}")
        say(f"{node.name}: {tag} loaded in {time.monotonic() - t0:.0f}s")
        copied.append(tag)
    return copied


def load_images_into(nodes: list[Node], tags: list[str], *, local: docker.DockerClient | None = None) -> None:
    """The same images into several nodes: each one saved once (a tar keyed by its id), loaded into the nodes that
    lack it in parallel. Three nodes x five images took 2.5 min one `save | load` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from .stacks import ROOT

    local = local or docker.from_env(timeout=300)
    cache = ROOT / ".cache" / "image-tars"
    cache.mkdir(parents=True, exist_ok=True)
    for tag in tags:
        want = local.images.get(tag).id
        todo = []
        for node in nodes:
            try:
                if node.client().images.get(tag).id == want:
                    continue
            except docker.errors.ImageNotFound:
                pass
            todo.append(node)
        if not todo:
            continue
        tar = cache / f"{want.split(':')[-1][:16]}.tar"
        if not tar.exists():
            for old in cache.glob("*.tar"):  # one tar per image at most: the older ones are stale
                if old.stat().st_size and old != tar and _tar_tag(old) == tag:
                    old.unlink()
            subprocess.run(["docker", "save", "-o", str(tar.with_suffix(".part")), tag], check=True, timeout=600)
            tar.with_suffix(".part").rename(tar)
            (tar.with_suffix(".tag")).write_text(tag)
        t0 = time.monotonic()

        def load(node: Node, tar=tar, tag=tag) -> None:
            run = subprocess.run(["docker", "-H", node.url, "load", "-q", "-i", str(tar)], capture_output=True,
                                 text=True, timeout=900)  # fmt: skip
            if run.returncode != 0:
                raise TopologyError(f"loading {tag} into {node.name} failed: {run.stderr.strip()[-300:]}")

        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            list(pool.map(load, todo))
        say(f"{tag} loaded into {', '.join(n.name for n in todo)} in {time.monotonic() - t0:.0f}s")


def _tar_tag(tar) -> str | None:
    tag_file = tar.with_suffix(".tag")
    return tag_file.read_text().strip() if tag_file.exists() else None


def nodes_of_ours(client: docker.DockerClient) -> list:
    return [c for c in client.containers.list(all=True, filters={"label": NODE_LABEL}) if is_ours(client, c)]


def remove_nodes(client: docker.DockerClient, *, stack: str | None = None) -> list[str]:
    """Remove node containers of ours (of one stack if given), their engine volumes and the nodes' network."""
    removed = []
    for c in nodes_of_ours(client):
        if stack and c.labels.get("io.dpg-chaos.stack") != stack:
            continue
        c.remove(force=True, v=True)
        removed.append(f"node {c.name}")
    filters = {"label": [f"{MANAGED_LABEL}=true"] + ([f"io.dpg-chaos.stack={stack}"] if stack else [])}
    for v in client.volumes.list(filters=filters):
        if v.name.endswith("-docker"):
            v.remove(force=True)
            removed.append(f"volume {v.name}")
    return removed
