"""Whole-container faults: kill, graceful stop, freeze (Jepsen's `kill`/`pause` packages)."""

from __future__ import annotations

import logging
import time

from .base import (
    STARTABLE,
    Fault,
    Target,
    reload_or_none,
    resolve,
    signal_name,
    target_name,
    wait_until,
)

log = logging.getLogger("dpg.chaos")


def unpause(c, *, within: float = 10.0) -> bool:
    """Unpause `c` if it is paused; True if it was. Retries while the freezer is still settling:
    an unpause right after a pause can fail with "cannot resume a running process"."""
    from docker.errors import APIError

    deadline = time.monotonic() + within
    while True:
        if reload_or_none(c) is None or c.status != "paused":
            return False
        try:
            c.unpause()
            return True
        except APIError as e:
            if time.monotonic() >= deadline:
                raise
            log.debug("unpause %s failed (%s); retrying", c.name, e.explanation or e)
            time.sleep(0.2)


def ensure_running(c) -> str:
    """Start `c` if it is stopped; unpause if paused. Returns what was done ("" if nothing)."""
    c = reload_or_none(c)
    if c is None:
        return "container is gone"
    if c.status == "restarting":  # a restart policy is already bringing it back
        wait_until(lambda: reload_or_none(c) is None or c.status != "restarting", within=15)
    if c.status == "paused":
        unpause(c)
        return "unpaused"
    if c.status in STARTABLE:
        c.start()
        return "started"
    return ""


class ContainerFault(Fault):
    """A fault on one container: keeps the target, the resolved container and what heal did."""

    #: what `healed_detail` says when heal found nothing to do
    nothing_done = "already running"

    def __init__(self, container: Target, *, history=None) -> None:
        super().__init__(history=history)
        self.target = container
        self._c = None
        self._healed = ""

    def targets(self) -> str:
        return target_name(self.target)

    #: how the reaper undoes this kind from outside: "start" (start it if it is down), "unpause", or None
    undo_action: str | None = "start"

    def undo_record(self) -> dict | None:
        return {"containers": [target_name(self.target)], "action": self.undo_action} if self.undo_action else None

    def healed_detail(self) -> str:
        return f"{self.describe()}: {self._healed or self.nothing_done}"


class Killed(ContainerFault):
    """Kill the container's PID 1 with a signal (crash, no shutdown); heal starts it again if it is down."""

    def __init__(
        self,
        container: Target,
        signal: str | int = "SIGKILL",
        restart: bool = True,
        *,
        timeout: float = 10.0,
        history=None,
    ) -> None:
        super().__init__(container, history=history)
        self.signal = signal_name(signal)
        self.restart = restart
        self.timeout = timeout

    def describe(self) -> str:
        return f"Killed({target_name(self.target)}, {self.signal})"

    def undo_record(self) -> dict | None:
        return super().undo_record() if self.restart else None

    def inject(self) -> None:
        self._c = resolve(self.target)
        self._c.kill(signal=self.signal)
        # a non-KILL signal may take a moment to end PID 1; heal must not see a dying "running" container
        if not wait_until(lambda: reload_or_none(self._c) is None or self._c.status != "running", within=self.timeout):
            log.warning("%s: %s still running %ss after %s", self.id, self._c.name, self.timeout, self.signal)

    def heal(self) -> None:
        if self._c is None or not self.restart:
            self._healed = "left down (restart=False)" if self._c is not None else ""
            return
        self._healed = ensure_running(self._c)


class Stopped(ContainerFault):
    """Gracefully stop the container (`docker stop`: SIGTERM, SIGKILL after `timeout`); heal starts it."""

    def __init__(self, container: Target, timeout: int = 10, *, history=None) -> None:
        super().__init__(container, history=history)
        self.timeout = timeout

    def describe(self) -> str:
        return f"Stopped({target_name(self.target)}, timeout={self.timeout}s)"

    def inject(self) -> None:
        self._c = resolve(self.target)
        self._c.stop(timeout=self.timeout)

    def heal(self) -> None:
        if self._c is not None:
            self._healed = ensure_running(self._c)


class Paused(ContainerFault):
    """Freeze every process of the container (cgroup freezer, Jepsen hammer-time); heal unpauses it."""

    undo_action = "unpause"

    def describe(self) -> str:
        return f"Paused({target_name(self.target)})"

    def inject(self) -> None:
        self._c = resolve(self.target)
        self._c.pause()

    def heal(self) -> None:
        if self._c is None:
            return
        unpause(self._c)
