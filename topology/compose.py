"""Run docker compose for one stack: `docker compose` (v2 plugin) when present, else `docker-compose` (v1)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

from .errors import TopologyError
from .stacks import Stack


@functools.cache
def compose_command() -> tuple[str, ...]:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    raise TopologyError("neither `docker compose` nor `docker-compose` is installed")


def run(
    stack: Stack, *args: str, env: dict[str, str] | None = None, check: bool = True, capture: bool = True
) -> subprocess.CompletedProcess:
    cmd = [*compose_command(), "-p", stack.project, "-f", str(stack.compose_file), *args]
    proc = subprocess.run(cmd, capture_output=capture, text=True, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip().splitlines()
        raise TopologyError(f"{' '.join(cmd[-len(args) - 4 :])} failed: {' | '.join(detail[-3:])}")
    return proc
