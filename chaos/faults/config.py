"""A misconfiguration as a fault: recreate one stack's containers with changed compose variables."""

from __future__ import annotations

from topology import compose, images
from topology.inventory import current
from topology.lifecycle import compose_env
from topology.stacks import STACKS

from .base import Fault, FaultUnsupported


class Reconfigured(Fault):
    """Run a stack with overridden variables (e.g. HAProxy checking /health); heal recreates it with defaults.

    Compose only recreates the containers whose configuration the variables change."""

    def __init__(self, stack: str, env: dict[str, str], *, history=None) -> None:
        super().__init__(history=history)
        if stack not in STACKS:
            raise ValueError(f"unknown stack {stack!r}")
        self.stack, self.env = STACKS[stack], dict(env)

    def describe(self) -> str:
        return f"Reconfigured({self.stack.name}: {', '.join(f'{k}={v}' for k, v in self.env.items())})"

    def targets(self) -> str:
        return self.stack.name

    def undo_record(self) -> dict:
        return {"stack": self.stack.name}

    def _up(self, overrides: dict[str, str]) -> None:
        client = images.docker_client()
        env = {**compose_env(client, self.stack), **overrides}
        compose.run(self.stack, "up", "-d", env=env)

    def inject(self) -> None:
        inv = current()
        if inv.is_target:
            raise FaultUnsupported(
                f"{self.describe()} recreates containers with compose: never done to a deployment this project did not "
                "create (target mode)"
            )
        if not inv.rebuildable:
            raise FaultUnsupported(f"{self.describe()}: recreating one stack across several hosts is not built (yet)")
        self._up(self.env)

    def heal(self) -> None:
        if not current().rebuildable:
            return  # nothing was recreated
        self._up({})  # the variables as the user set them (or the compose defaults)
