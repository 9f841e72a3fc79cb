"""The stacks of the DPG topology: which compose file, which images, what they depend on."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TopologyError

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_DIR = ROOT / "compose"


@dataclass(frozen=True)
class Stack:
    name: str
    services: tuple[str, ...]
    images: tuple[str, ...] = ()  # our images (roles under compose/images) this stack runs
    upstream_env: str | None = None  # env var naming an upstream image we cannot build here
    upstream_default: str | None = None
    fallback_image: str | None = None  # our own image used when the upstream one is absent
    needs: tuple[str, ...] = ()  # stacks that must be up first
    ports: tuple[tuple[str, int], ...] = field(default=())  # (env var, default) of published ports

    @property
    def compose_file(self) -> Path:
        return COMPOSE_DIR / f"{self.name}.yml"

    @property
    def project(self) -> str:
        return f"dpg-{self.name}"

    def upstream_image(self) -> str | None:
        if not self.upstream_env:
            return None
        return os.environ.get(self.upstream_env) or self.upstream_default

    def published_ports(self) -> list[tuple[str, int]]:
        return [(env, port(env)) for env, _ in self.ports]


STACKS: dict[str, Stack] = {
    s.name: s
    for s in (
        Stack(
            "patroni",
            ("etcd-1", "etcd-2", "etcd-3", "patroni-1", "patroni-2", "patroni-3", "haproxy", "pgbackrest"),
            images=("etcd", "postgres", "haproxy"),
            ports=(
                ("DPG_PORT_HAPROXY_RW", 5000),
                ("DPG_PORT_HAPROXY_RO", 5001),
                ("DPG_PORT_HAPROXY_STATS", 7000),
                ("DPG_PORT_PATRONI_1", 5433),
                ("DPG_PORT_PATRONI_2", 5434),
                ("DPG_PORT_PATRONI_3", 5435),
                ("DPG_PORT_PATRONI_1_API", 8008),
                ("DPG_PORT_PATRONI_2_API", 8009),
                ("DPG_PORT_PATRONI_3_API", 8010),
                ("DPG_PORT_ETCD_1", 23791),
                ("DPG_PORT_ETCD_2", 23792),
                ("DPG_PORT_ETCD_3", 23793),
            ),
        ),
        Stack(
            "pgbouncer",
            ("pgbouncer",),
            images=("pgbouncer",),
            needs=("patroni",),
            ports=(("DPG_PORT_PGBOUNCER", 6432),),
        ),
        Stack(
            "traefik",
            ("traefik",),
            images=("traefik",),
            needs=("patroni",),
            ports=(
                ("DPG_PORT_TRAEFIK_RW", 5500),
                ("DPG_PORT_TRAEFIK_RO", 5501),
                ("DPG_PORT_TRAEFIK_CITUS", 5502),
                ("DPG_PORT_TRAEFIK_API", 8080),
                ("DPG_PORT_TRAEFIK_OPS", 8081),
            ),
        ),
        Stack("vector", ("vector-db",), images=("postgres",), ports=(("DPG_PORT_VECTOR", 5432),)),
        Stack("redis", ("redis",), images=("redis",), ports=(("DPG_PORT_REDIS", 6379),)),
        Stack(
            "toxiproxy",
            ("toxiproxy", "echo"),
            images=("faultproxy",),
            upstream_env="DPG_TOXIPROXY_IMAGE",
            upstream_default="ghcr.io/shopify/toxiproxy:2.12.0",
            fallback_image="dpg/faultproxy:latest",
            ports=(("DPG_PORT_TOXIPROXY", 8474),),
        ),
        Stack(
            "monitoring",
            (
                "prometheus",
                "postgres-exporter-patroni",
                "postgres-exporter-vector",
                "redis-exporter",
                "postgres-exporter-citus",
                "blackbox-exporter",
            ),
            images=("prometheus", "exporters"),
            needs=("patroni", "traefik", "vector", "redis"),
            ports=(("DPG_PORT_PROMETHEUS", 9090),),
        ),
        Stack(
            "citus",
            ("citus-coordinator", "citus-worker-1", "citus-worker-2"),
            upstream_env="DPG_CITUS_IMAGE",
            upstream_default="citusdata/citus:13.0.3",
            ports=(
                ("DPG_PORT_CITUS_COORDINATOR", 5440),
                ("DPG_PORT_CITUS_WORKER_1", 5441),
                ("DPG_PORT_CITUS_WORKER_2", 5442),
            ),
        ),
        Stack(
            "grafana",
            ("grafana",),
            upstream_env="DPG_GRAFANA_IMAGE",
            upstream_default="grafana/grafana:11.3.0",
            needs=("monitoring",),
            ports=(("DPG_PORT_GRAFANA", 3000),),
        ),
    )
}

#: Every published port's default, by its variable (the one source for endpoints and health gates).
DEFAULT_PORTS: dict[str, int] = {env: default for st in STACKS.values() for env, default in st.ports}


def port(env: str) -> int:
    """The host port behind a DPG_PORT_* variable (its default unless the user set it)."""
    raw = os.environ.get(env, str(DEFAULT_PORTS[env]))
    try:
        return int(raw)
    except ValueError:
        raise TopologyError(f"{env}={raw!r} is not a port number") from None


#: Order in which `up` starts stacks (dependencies first).
ORDER = ("patroni", "pgbouncer", "traefik", "vector", "redis", "toxiproxy", "citus", "monitoring", "grafana")


def named(names: list[str] | tuple[str, ...]) -> list[Stack]:
    """Exactly the stacks named, in the order given; one clear error for any unknown name."""
    unknown = [n for n in names if n not in STACKS]
    if unknown:
        raise TopologyError(f"unknown stack {', '.join(unknown)}; known: {', '.join(ORDER)}")
    return [STACKS[n] for n in names]


def resolve(names: list[str] | tuple[str, ...] | None) -> list[Stack]:
    """Stacks named (plus what they need), in start order; all stacks when none are named."""
    if not names:
        return [STACKS[n] for n in ORDER]
    named(names)
    wanted: set[str] = set()

    def add(n: str) -> None:
        if n not in wanted:
            wanted.add(n)
            for dep in STACKS[n].needs:
                add(dep)

    for n in names:
        add(n)
    return [STACKS[n] for n in ORDER if n in wanted]
