"""What is ours: a container, volume or network this project created, known by what it put on it at creation.

A container inherits its image's labels, so a label alone proves nothing: a user's container started from an image
built `FROM dpg/postgres` (or from an old image of ours that still carried the label) would look like ours, and
`topology down` once removed such a container with its volume. Here a container is ours only if it carries
MANAGED_LABEL and its image does not carry the same label: the label was put on it at creation (compose `labels:`,
`docker run --label`), by us. Images of ours carry IMAGE_LABEL instead, which is never read as ownership.
Volumes and networks have no image: their labels are their creator's.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import TYPE_CHECKING

import docker.errors

from .errors import TopologyError
from .names import MANAGED_LABEL, RUN_LABEL, STACK_LABEL

if TYPE_CHECKING:  # pragma: no cover
    from docker import DockerClient
    from docker.models.containers import Container


def run_id() -> str:
    """This process's run id (DPG_RUN_ID, else made once and exported so child processes share it)."""
    rid = os.environ.get("DPG_RUN_ID")
    if not rid:
        rid = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        os.environ["DPG_RUN_ID"] = rid
    return rid


def creation_labels(stack: str | None = None) -> dict[str, str]:
    """The labels to put on anything this project creates (containers, volumes, networks, helper containers)."""
    labels = {MANAGED_LABEL: "true", RUN_LABEL: run_id()}
    if stack:
        labels[STACK_LABEL] = stack
    return labels


def _image_labels(client: DockerClient, c: Container) -> dict[str, str]:
    image_id = c.attrs.get("Image") or ""
    try:
        return client.images.get(image_id).labels or {}
    except (docker.errors.ImageNotFound, docker.errors.APIError):
        return {}  # image removed since: nothing can have been inherited from an image that is not there


def is_ours(client: DockerClient, c: Container) -> bool:
    """True only for a container this project created (the label was set at creation, not inherited)."""
    labels = c.labels or {}
    if labels.get(MANAGED_LABEL) != "true":
        return False
    return _image_labels(client, c).get(MANAGED_LABEL) != "true"


def managed_containers(client: DockerClient, stack: str | None = None) -> list[Container]:
    """Every container of ours on this engine (of one stack if given), running or not."""
    labels = [f"{MANAGED_LABEL}=true"] + ([f"{STACK_LABEL}={stack}"] if stack else [])
    found = client.containers.list(all=True, filters={"label": labels}, ignore_removed=True)
    return [c for c in found if is_ours(client, c)]


def everything_ours(client: DockerClient) -> tuple[list, list, list]:
    """(containers, volumes, networks) of ours on this engine: what `down` removes and `leftovers` lists."""
    label = {"label": f"{MANAGED_LABEL}=true"}
    return managed_containers(client), client.volumes.list(filters=label), client.networks.list(filters=label)


def remove_everything(client: DockerClient, *, keep_network: bool = False) -> list[str]:
    """Remove every container, volume and network of ours on this engine: a clean slate for CI and `down`."""
    removed = []
    containers, volumes, networks = everything_ours(client)
    for c in containers:
        c.remove(force=True, v=True)
        removed.append(f"container {c.name}")
    for v in volumes:
        v.remove(force=True)
        removed.append(f"volume {v.name}")
    if not keep_network:
        for n in networks:
            n.reload()
            if n.attrs.get("Containers"):  # a container that is not ours still uses it: leave it, say so
                others = ", ".join(sorted(e.get("Name", "?") for e in n.attrs["Containers"].values()))
                removed.append(f"kept network {n.name}: still used by {others}")
                continue
            _remove_network(n)
            removed.append(f"network {n.name}")
    return removed


def _remove_network(n, *, within: float = 10.0) -> None:
    """Remove a network nobody uses. Right after its last container was removed Docker may still answer "has active
    endpoints" for a moment (a network of ours was once left behind that way): retry, bounded."""
    deadline = time.monotonic() + within
    while True:
        try:
            n.remove()
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if "active endpoints" not in str(exc.explanation) or time.monotonic() >= deadline:
                raise TopologyError(f"cannot remove network {n.name}: {exc.explanation}") from None
            time.sleep(0.5)
