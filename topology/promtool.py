"""Run `promtool` from our own Prometheus image (Debian's prometheus package ships it), offline.

The rule files, their unit tests and the scrape config are checked with the same Prometheus version that
runs them (no host install, no registry). The container has no network, mounts its inputs read-only and is
removed afterwards; it carries the project label (and the one-shot label: never restarted) so a killed
run's leftover is reaped like any other.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from . import images
from .errors import TopologyError
from .ownership import creation_labels
from .stacks import COMPOSE_DIR

#: chaos.faults.heal.ONESHOT_LABEL: `chaos heal` never restarts such a leftover; `topology down` removes it
ONESHOT_LABEL = "io.dpg-chaos.oneshot"

IMAGE = "dpg/prometheus:latest"
CONFIG_DIR = COMPOSE_DIR / "config" / "prometheus"
#: the run's own limit: promtool on a few files takes well under a second
TIMEOUT_S = 120


@dataclass(frozen=True)
class Result:
    exit_code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def missing_reason(client=None) -> str | None:
    """Why promtool cannot run here (None when it can): the image is built by `topology build prometheus`."""
    client = client or images.docker_client()
    if not images.image_present(client, IMAGE):
        return f"{IMAGE} is not built (run `python -m topology build prometheus`)"
    return None


def run_script(script: str, mounts: dict[Path, str], *, client=None) -> Result:
    """Run a /bin/sh script in the Prometheus image with host paths mounted read-only at the given paths."""
    client = client or images.docker_client()
    volumes = {str(Path(src).resolve()): {"bind": dst, "mode": "ro"} for src, dst in mounts.items()}
    try:
        c = client.containers.run(
            IMAGE,
            ["-c", script],
            entrypoint="/bin/sh",
            network_disabled=True,
            volumes=volumes,
            labels={**creation_labels(), ONESHOT_LABEL: "true"},
            working_dir="/",
            user="root",
            detach=True,
        )
    except docker.errors.ImageNotFound:
        raise TopologyError(missing_reason(client) or f"{IMAGE} not found") from None
    try:
        rc = c.wait(timeout=TIMEOUT_S)["StatusCode"]
        out = c.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    finally:
        c.remove(force=True)
    return Result(rc, out)


def promtool(*args: str, mounts: dict[Path, str], client=None) -> Result:
    """`promtool <args>` with `mounts` (host path -> path in the container)."""
    return run_script("exec promtool " + " ".join(shlex.quote(a) for a in args), mounts, client=client)


def config_mounts(config_dir: Path = CONFIG_DIR) -> dict[Path, str]:
    """The layout compose/monitoring.yml gives Prometheus, plus the rule unit tests next to the rules."""
    return {
        config_dir / "prometheus.yml": "/etc/prometheus/prometheus.yml",
        config_dir / "rules": "/etc/prometheus/rules",
        config_dir / "tests": "/etc/prometheus/tests",
    }
