"""Run iptables in a container's network namespace, with or without the container's help (Pumba's sidecar).

A container of ours has iptables and NET_ADMIN. A target's may have neither: then a helper container of ours
joins its network namespace (`--network container:<id>`, NET_ADMIN) on the same engine, runs the one command and
is removed; the rules it adds live in the target's namespace and die with it. The helper image (`dpg/nettools`,
built here) is loaded onto a remote engine the first time it is needed there. Where even that is impossible the
fault says exactly what is missing, once, as FaultUnsupported (the test is skipped with that reason).
"""

from __future__ import annotations

import logging
import shlex
import threading
from typing import Any

from topology.ownership import creation_labels

from .base import FaultError, FaultUnsupported, exec_root

log = logging.getLogger("dpg.chaos")

HELPER_IMAGE = "dpg/nettools:latest"
HELPER_LABEL = "io.dpg-chaos.helper"
HELPER_TIMEOUT_S = 60

_modes: dict[str, str] = {}  # container id -> "exec" | "helper"
_lock = threading.Lock()

#: what an exec says when the container cannot run iptables itself (missing binary, no NET_ADMIN)
_CANNOT = (
    "executable file not found",
    "not found",
    "no such file",
    "permission denied",
    "can't initialize",
    "operation not permitted",
)


def _mode(c: Any) -> str:
    cid = getattr(c, "id", None)
    if cid is None:  # a stand-in without an engine behind it (unit tests): exec is all it has
        return "exec"
    with _lock:
        if cid in _modes:
            return _modes[cid]
    rc, out = exec_root(c, ["iptables", "-w", "5", "-S"], check=False)
    if rc == 0 and "-P INPUT" in out:
        mode = "exec"
    elif any(s in out.lower() for s in _CANNOT):
        _ensure_helper_image(c)
        mode = "helper"
        log.warning(
            "%s cannot run iptables itself (%s): using a helper container in its network namespace",
            c.name,
            out.strip()[:120],
        )
    else:
        raise FaultError(f"iptables -S in {c.name} failed (exit {rc}): {out[:200]}")
    with _lock:
        _modes[cid] = mode
    return mode


def _ensure_helper_image(c: Any) -> None:
    """The helper image on c's engine: present, or loaded there from the local engine (where it is built)."""
    import docker
    from docker.errors import ImageNotFound

    try:
        c.client.images.get(HELPER_IMAGE)
        return
    except ImageNotFound:
        pass
    try:
        local = docker.from_env(timeout=300)
        image = local.images.get(HELPER_IMAGE)
    except (ImageNotFound, docker.errors.DockerException):
        raise FaultUnsupported(
            f"{c.name} has no iptables or no NET_ADMIN, and the helper image {HELPER_IMAGE} is neither on its engine "
            "nor built locally (python -m topology build nettools)"
        ) from None
    log.warning("loading %s onto the engine of %s (it runs the helper for network faults there)", HELPER_IMAGE, c.name)
    try:
        c.client.images.load(b"".join(image.save(named=True)))
    except docker.errors.DockerException as exc:
        raise FaultUnsupported(f"cannot load {HELPER_IMAGE} onto the engine of {c.name}: {exc}") from None


def _helper(c: Any, argv: list[str]) -> tuple[int, str]:
    """One command in a fresh helper container sharing c's network namespace; always removed."""
    helper = c.client.containers.run(
        HELPER_IMAGE,
        argv,
        network_mode=f"container:{c.id}",
        cap_add=["NET_ADMIN"],
        labels={**creation_labels(), HELPER_LABEL: "true"},
        detach=True,
    )
    try:
        status = helper.wait(timeout=HELPER_TIMEOUT_S)
        out = helper.logs(stdout=True, stderr=True).decode("utf-8", "replace").strip()
        return int(status.get("StatusCode", 1)), out
    finally:
        try:
            helper.remove(force=True)
        except Exception as exc:  # `chaos heal` removes a leftover helper by its label
            log.warning("helper %s not removed: %s", helper.short_id, exc)


def run(
    c: Any, argv: list[str], *, check: bool = True, what: str = "", expect=None, attempts: int = 5
) -> tuple[int, str]:
    """`argv` (iptables ..., or `sh -c` over iptables) in c's network namespace: in c itself when it can, else in
    a helper. Same contract as `exec_root` (check raises FaultError, expect retries implausible output)."""
    if _mode(c) == "exec":
        return exec_root(c, argv, check=check, what=what, expect=expect, attempts=attempts)
    for _ in range(attempts if expect else 1):
        rc, out = _helper(c, argv)
        if expect is None or expect(rc, out):
            break
    if check and rc != 0:
        raise FaultError(f"{what or 'command'} failed in a helper for {c.name} (exit {rc}): {shlex.join(argv)}: {out}")
    return rc, out


def mode_of(c: Any) -> str:
    """'exec' or 'helper' (for evidence: how a network fault reached the container)."""
    return _mode(c)
