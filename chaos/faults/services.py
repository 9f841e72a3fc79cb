"""Operator actions on a service container: config reload by signal, full restart."""

from __future__ import annotations

import time

from .base import Target, reload_or_none, resolve, signal_name, target_name, wait_until
from .containers import ContainerFault, ensure_running


class ServiceReloaded(ContainerFault):
    """Send a reload signal (SIGHUP, SIGUSR2...) to the container's PID 1; heal makes sure it still runs."""

    nothing_done = "still running"

    def __init__(self, container: Target, signal: str | int = "SIGHUP", *, settle: float = 2.0, history=None) -> None:
        super().__init__(container, history=history)
        self.signal = signal_name(signal)
        #: a reload that crashes the service shows within this many seconds of the signal; a heal
        #: that comes sooner watches the container until then before deciding it survived.
        self.settle = settle
        self._sent_at = 0.0

    def describe(self) -> str:
        return f"ServiceReloaded({target_name(self.target)}, {self.signal})"

    def inject(self) -> None:
        self._c = resolve(self.target)
        self._c.kill(signal=self.signal)
        self._sent_at = time.monotonic()

    def heal(self) -> None:
        if self._c is None:
            return
        left = self.settle - (time.monotonic() - self._sent_at)
        if left > 0:
            wait_until(lambda: reload_or_none(self._c) is None or self._c.status != "running", within=left)
        self._healed = ensure_running(self._c)


class ServiceRestarted(ContainerFault):
    """Restart the container (`docker restart`: stop with `timeout`, then start); heal ensures it runs."""

    nothing_done = "running"

    def __init__(self, container: Target, timeout: int = 10, *, history=None) -> None:
        super().__init__(container, history=history)
        self.timeout = timeout

    def describe(self) -> str:
        return f"ServiceRestarted({target_name(self.target)}, timeout={self.timeout}s)"

    def inject(self) -> None:
        self._c = resolve(self.target)
        self._c.restart(timeout=self.timeout)

    def heal(self) -> None:
        if self._c is not None:
            self._healed = ensure_running(self._c)
