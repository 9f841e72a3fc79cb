"""Bring stacks up and down, with preflight checks that fail in one clear sentence."""

from __future__ import annotations

import secrets
import socket
import time

import docker

from . import compose, health, images, seed
from .docker_env import ensure_network, ip_prefix, managed_containers, remove_everything
from .errors import TopologyError
from .inventory import current
from .names import MANAGED_LABEL, NETWORK, RUN_LABEL, STACK_LABEL, container
from .ownership import run_id
from .stacks import Stack, named, resolve
from .timeouts import TIMEOUTS


def refuse_in_target_mode(what: str) -> None:
    """The db role is a no-op against a target (Jepsen's --leave-db-running): nothing of it is started or rebuilt."""
    inv = current()
    if inv.is_target:
        raise TopologyError(
            f"target mode ({inv.name}, {inv.source}): this project does not {what} in a deployment it did not create"
        )
    if not inv.rebuildable:
        raise TopologyError(f"{inv.name}: a multi-host deployment is started and removed as a whole (--hosts)")


def say(msg: str) -> None:
    print(f"[topology] {msg}", flush=True)


def image_for(client: docker.DockerClient, stack: Stack) -> tuple[str | None, str | None]:
    """(image to use for an upstream-image stack, skip reason). Our own stacks return (None, None)."""
    if not stack.upstream_env:
        return None, None
    wanted = stack.upstream_image()
    if wanted and images.image_present(client, wanted):
        return wanted, None
    if stack.fallback_image:
        return stack.fallback_image, None
    return None, (
        f"{stack.name} skipped: image `{wanted}` not present locally (no registry reachable here); "
        f"`python -m topology pull` where a registry is reachable, or load/build it and/or set {stack.upstream_env}"
    )


def skip_reason(client: docker.DockerClient, name: str) -> str | None:
    from .stacks import STACKS

    return image_for(client, STACKS[name])[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def check_ports(client: docker.DockerClient, stack: Stack) -> None:
    running = {c.name for c in managed_containers(client, stack.name) if c.status == "running"}
    if running:
        return  # our own stack holds its ports; compose up -d is idempotent
    for env, port in stack.published_ports():
        if not _port_free(port):
            raise TopologyError(
                f"port 127.0.0.1:{port} ({env}, stack {stack.name}) is already taken; "
                f"free it or set {env} to another port"
            )


#: compose/patroni.yml's variable for etcd's --initial-cluster-token
ETCD_TOKEN_VAR = "DPG_ETCD_CLUSTER_TOKEN"


def new_etcd_token() -> str:
    return f"dpg-etcd-{secrets.token_hex(4)}"


def etcd_cluster_token(client: docker.DockerClient) -> str:
    """The token of the etcd cluster that exists (read from its members' environment, so `compose up` never
    recreates a member over a changed variable), or a new one when no member exists: etcd derives the cluster ID
    from the token and the members' peer URLs, so an etcd cluster re-created after it was lost (a DR drill's wipe)
    with the same token would get the same ID, and Patroni 4.0.7 refuses members of "the same cluster" whose raft
    term is below the highest it saw (StaleEtcdNode, docs/findings.md): a new token makes it a new cluster."""
    for c in managed_containers(client, "patroni"):
        if c.labels.get("com.docker.compose.service", "").startswith("etcd"):
            for item in c.attrs.get("Config", {}).get("Env") or []:
                key, _, value = item.partition("=")
                if key == "ETCD_INITIAL_CLUSTER_TOKEN" and value:
                    return value
    return new_etcd_token()


def compose_env(client: docker.DockerClient, stack: Stack) -> dict[str, str]:
    """The variables compose needs for a stack. DPG_RUN_ID is the run that created the stack's containers, if
    they exist: a changed label would make `compose up` (a Reconfigured fault, a DR rebuild) recreate them all."""
    existing = [c.labels.get(RUN_LABEL) for c in managed_containers(client, stack.name) if c.labels.get(RUN_LABEL)]
    env = {"DPG_IP_PREFIX": ip_prefix(), "DPG_NETWORK": NETWORK, "DPG_RUN_ID": existing[0] if existing else run_id()}
    if stack.name == "patroni":
        env[ETCD_TOKEN_VAR] = etcd_cluster_token(client)
    image, _ = image_for(client, stack)
    if image and stack.upstream_env:
        env[stack.upstream_env] = image
    return env


def up(names: list[str] | None = None, *, build: bool = True, wait: bool = True) -> dict[str, str]:
    """Start the named stacks (default: all) and wait on their health gates. Returns {stack: skip reason}."""
    refuse_in_target_mode("start stacks")
    client = images.docker_client()
    stacks = resolve(names)
    skipped = {}
    runnable = []
    for stack in stacks:
        _, reason = image_for(client, stack)
        if reason:
            skipped[stack.name] = reason
            say(reason)
        else:
            runnable.append(stack)
    for stack in runnable:
        check_ports(client, stack)
    if build:
        roles = sorted({r for s in runnable for r in s.images})
        images.build(roles)
    else:
        missing = [
            f"dpg/{r}:latest" for s in runnable for r in s.images if not images.image_present(client, f"dpg/{r}:latest")
        ]
        if missing:
            raise TopologyError(f"image(s) {', '.join(missing)} missing: run `python -m topology build`")
    ensure_network(client)
    started = time.monotonic()
    for stack in runnable:
        t0 = time.monotonic()
        say(f"{stack.name}: starting")
        compose.run(stack, "up", "-d", "--remove-orphans", env=compose_env(client, stack))
        if wait and stack.name in seed.SEEDERS:
            _wait_seeded(client, stack)
        elif wait:
            health.wait_healthy(client, [stack.name], within=TIMEOUTS.stack_up)
        say(f"{stack.name}: healthy in {time.monotonic() - t0:.1f}s")
    say(
        f"up: {len(runnable)} stack(s) healthy in {time.monotonic() - started:.1f}s"
        + (f"; skipped: {', '.join(skipped)}" if skipped else "")
    )
    return skipped


def _wait_seeded(client: docker.DockerClient, stack: Stack) -> None:
    """Stacks with seed data: wait for the server, seed idempotently, then run the real gate."""
    from .waiting import wait_for

    wait_for(
        lambda: seed.SEEDERS[stack.name]() or True,
        within=TIMEOUTS.stack_up,
        what=f"{stack.name} accepts the seed data",
        every=1,
    )
    health.wait_healthy(client, [stack.name], within=TIMEOUTS.stack_up)


def down(names: list[str] | None = None) -> list[str]:
    """Remove the named stacks, or everything of ours (containers, volumes, the network) when none named."""
    client = images.docker_client()
    if not names:
        return remove_everything(client)
    removed = []
    for stack in named(names):
        for c in managed_containers(client, stack.name):
            c.remove(force=True, v=True)
            removed.append(f"container {c.name}")
        for v in client.volumes.list(filters={"label": [f"{MANAGED_LABEL}=true", f"{STACK_LABEL}={stack.name}"]}):
            v.remove(force=True)
            removed.append(f"volume {v.name}")
    return removed


def down_started(names: list[str]) -> list[str]:
    """Remove the stacks a run started; the network too when nothing of ours is left (pytest, the benchmark)."""
    client = images.docker_client()
    removed = down(names)
    if not managed_containers(client):
        removed += remove_everything(client)
    return removed


def status_rows(client: docker.DockerClient) -> list[tuple[str, str, str, str, str]]:
    roles: dict[str, str] = {}
    try:
        from .patroni import PatroniCluster

        for m in PatroniCluster(client).members():
            roles[container(m.name)] = f"{m.role} ({m.state}, tl {m.timeline}, lag {m.lag})"
    except Exception:
        pass
    rows = []
    for c in sorted(managed_containers(client), key=lambda c: (c.labels.get(STACK_LABEL, ""), c.name)):
        state = c.attrs.get("State", {})
        healthy = state.get("Health", {}).get("Status") or c.status
        if c.status != "running":
            healthy = c.status
        ports = sorted({f"{b[0]['HostIp']}:{b[0]['HostPort']}" for b in (c.ports or {}).values() if b})
        rows.append((c.labels.get(STACK_LABEL, "?"), c.name, roles.get(c.name, "-"), healthy, " ".join(ports)))
    return rows
