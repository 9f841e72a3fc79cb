"""DPG spread over several Docker hosts joined in a Swarm (`python -m topology up --hosts N`, `pytest --hosts N`).

On this machine the hosts are Docker-in-Docker nodes (topology/hosts.py); on real machines the same inventory format
names their engines (ssh:// or tcp:// + TLS, docs/target.md). The nodes form one Swarm (every node a manager, so
the control plane survives the loss of one) and `dpg-unified-network` is an attachable overlay with the seed's
subnet and addresses: every container keeps its seed address and DNS name across hosts.

Placement (PLACEMENT, the one place to change it): patroni-i and etcd-i on host i, like a production layout; the
routers spread so that no single host crash takes every one of them. HAProxy A (the HAProxy entry point) runs on
host 1; a second HAProxy, B, on host 2 is the backend of PgBouncer (host 2) and Traefik (host 3). Host 1 down:
PgBouncer and Traefik still route; host 2 down: HAProxy and libpq still route; host 3 down: all but Traefik.
The pgBackRest repository runs on host 3. Vector DB, Redis, monitoring and Citus stay single-host stacks.

Each host runs its services with compose against its own engine, from our compose files as compose resolves
them (same images, same labels of ours, the run id), published on the node and from there on 127.0.0.1 of this
machine at the ports below (OFFSET above the single-host defaults, so both topologies can run side by side).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import docker
import yaml

from . import hosts
from .errors import TopologyError
from .names import SUBNET
from .ownership import creation_labels, run_id
from .stacks import COMPOSE_DIR, DEFAULT_PORTS, ROOT

STACK = "multihost"
NETWORK = os.environ.get("DPG_NETWORK", "dpg-unified-network")  # not names.NETWORK: that one asks the inventory
NODE_PREFIX = "dpg-host-"
NODE_NETWORK, NODE_SUBNET, NODE_IP = "dpg-hosts", "172.28.0.0/24", "172.28.0.{}"
NODE_API_BASE = 23760  # host i's engine on 127.0.0.1:23760+i
OFFSET = 10000  # published ports: the single-host default + OFFSET
WORK = ROOT / ".cache" / "multihost"
IMAGES = ("dpg/etcd:latest", "dpg/postgres:latest", "dpg/haproxy:latest", "dpg/pgbouncer:latest", "dpg/traefik:latest")
HAPROXY_B_IP = "28"  # host number on the seed's subnet: not one the seed uses

#: host -> services, for N = 3 (the default of this mode). With more hosts, hosts 4.. carry nothing but their engine
#: (room for replicas later); with fewer, the routers fold onto the hosts there are.
PLACEMENT: dict[int, tuple[str, ...]] = {
    1: ("etcd-1", "patroni-1", "haproxy"),
    2: ("etcd-2", "patroni-2", "haproxy-b", "pgbouncer"),
    3: ("etcd-3", "patroni-3", "traefik", "pgbackrest"),
}


#: the containers each write entry point needs (the multi-host placement: PgBouncer and Traefik go through HAProxy B)
ENTRY_POINT_ROLES: dict[str, tuple[str, ...]] = {
    "haproxy": ("haproxy",),
    "pgbouncer": ("pgbouncer", "haproxy-b"),
    "traefik": ("traefik", "haproxy-b"),
    "multihost": (),  # libpq to the Patroni nodes themselves
}


def entry_points_surviving(lost_hosts: set[str]) -> list[str]:
    """The write entry points that keep a path while `lost_hosts` are down (the placement decides, not a guess)."""
    from .inventory import current

    inv = current()
    return [
        ep
        for ep, roles in ENTRY_POINT_ROLES.items()
        if not any(inv.roles[r].engine in lost_hosts for r in roles if r in inv.roles)
    ]


def host_name(i: int) -> str:
    return f"host-{i}"


def node_name(i: int) -> str:
    return NODE_PREFIX + str(i)


def count() -> int:
    raw = os.environ.get("DPG_HOSTS", "3")
    n = int(raw)
    if n < 3:
        raise TopologyError(f"DPG_HOSTS={n}: the multi-host mode needs 3 hosts (one per Patroni/etcd pair)")
    return n


def placement(n: int) -> dict[int, tuple[str, ...]]:
    return {i: PLACEMENT.get(i, ()) for i in range(1, n + 1)}


def host_of(service: str, n: int = 3) -> int:
    return next(i for i, svcs in placement(n).items() if service in svcs)


def published(env: str) -> int:
    return DEFAULT_PORTS[env] + OFFSET


def inventory_data(n: int) -> dict:
    """The deployment as an inventory (same format as a target's), known before anything runs."""
    loop = "127.0.0.1"
    members, etcd = {}, {}
    for i in (1, 2, 3):
        members[f"patroni-{i}"] = {
            "container": f"dpg-patroni-{i}",
            "engine": host_name(host_of(f"patroni-{i}", n)),
            "api": f"http://{loop}:{published(f'DPG_PORT_PATRONI_{i}_API')}",
            "postgres": f"{loop}:{published(f'DPG_PORT_PATRONI_{i}')}",
        }
        etcd[f"etcd-{i}"] = {
            "container": f"dpg-etcd-{i}",
            "engine": host_name(host_of(f"etcd-{i}", n)),
            "client_url": f"http://{loop}:{published(f'DPG_PORT_ETCD_{i}')}",
        }
    services = {
        svc: {"container": f"dpg-{svc}", "engine": host_name(host_of(svc, n))}
        for svc in ("haproxy", "haproxy-b", "pgbouncer", "traefik", "pgbackrest")
    }
    return {
        "version": 1,
        "name": f"multihost-{n}",
        "managed_by": "dpg-chaos-multihost",
        "faults": "allowed",
        "engines": {host_name(i): {"url": f"tcp://{loop}:{NODE_API_BASE + i}"} for i in range(1, n + 1)},
        "hosts": {
            host_name(i): {"container": node_name(i), "address": NODE_IP.format(10 + i)} for i in range(1, n + 1)
        },
        "database": {
            "name": "distributed_postgres_cluster",
            "app": {"user": "dpg_cluster", "password": {"env": "DPG_DB_PASSWORD"}},
            "readonly": {"user": "readonly_user", "password": {"env": "DPG_RO_PASSWORD"}},
            "superuser": {"user": "postgres", "password": {"env": "DPG_SUPERUSER_PASSWORD"}},
        },
        "network": NETWORK,
        "patroni": {"scope": "dpg", "namespace": "/service", "members": members},
        "etcd": {"members": etcd},
        "services": services,
        "endpoints": {
            "haproxy_rw": f"{loop}:{published('DPG_PORT_HAPROXY_RW')}",
            "haproxy_ro": f"{loop}:{published('DPG_PORT_HAPROXY_RO')}",
            "haproxy_stats": f"http://{loop}:{published('DPG_PORT_HAPROXY_STATS')}/;csv",
            "pgbouncer": f"{loop}:{published('DPG_PORT_PGBOUNCER')}",
            "traefik_rw": f"{loop}:{published('DPG_PORT_TRAEFIK_RW')}",
            "traefik_ro": f"{loop}:{published('DPG_PORT_TRAEFIK_RO')}",
            "traefik_api": f"http://{loop}:{published('DPG_PORT_TRAEFIK_API')}",
        },
    }


#: the compose files' own test credentials: the multi-host deployment runs our images with them unless set
CREDENTIALS = {"DPG_DB_PASSWORD": "dpg_cluster_pw", "DPG_RO_PASSWORD": "readonly_pw",
               "DPG_SUPERUSER_PASSWORD": "postgres_pw"}  # fmt: skip


def inventory_file(n: int) -> Path:
    """The generated inventory, written where `pytest --target` (and a user) can read it. It refers to the
    credentials by variable, as any inventory does; they default to the compose files' test values here."""
    for var, value in CREDENTIALS.items():
        os.environ.setdefault(var, value)
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"inventory-{n}-hosts.yml"
    head = "# generated by topology/multihost.py for `--hosts`; the same format as a target's (docs/target.md)\n"
    path.write_text(head + yaml.safe_dump(inventory_data(n), sort_keys=False))
    return path


def say(msg: str) -> None:
    print(f"[multihost] {msg}", flush=True)


# ------------------------------------------------------------------------------------------------- compose
def _compose_env() -> dict[str, str]:
    env = {**os.environ, "DPG_IP_PREFIX": ".".join(SUBNET.split("/")[0].split(".")[:3]), "DPG_NETWORK": NETWORK}
    env.update({k: str(v + OFFSET) for k, v in DEFAULT_PORTS.items()})
    env["DPG_RUN_ID"] = run_id()
    env["DPG_ETCD_CLUSTER_TOKEN"] = f"dpg-etcd-{run_id()}"  # the hosts' etcd is created once per run
    env["DPG_TRAEFIK_DYNAMIC_DIR"] = str(WORK / "traefik-dynamic")
    return env


def _generated_configs() -> None:
    """The routers behind HAProxy B: PgBouncer's and Traefik's configs with `haproxy` -> `haproxy-b`."""
    WORK.mkdir(parents=True, exist_ok=True)
    ini = (COMPOSE_DIR / "config" / "pgbouncer" / "pgbouncer.ini").read_text()
    (WORK / "pgbouncer.ini").write_text(ini.replace("host=haproxy ", "host=haproxy-b "))
    dyn = WORK / "traefik-dynamic"
    shutil.rmtree(dyn, ignore_errors=True)
    shutil.copytree(COMPOSE_DIR / "config" / "traefik" / "dynamic", dyn)
    for f in dyn.glob("*.yml"):
        f.write_text(f.read_text().replace('"haproxy:', '"haproxy-b:'))


def compose_for_host(i: int, n: int) -> Path:
    """Host i's compose file: its services from our compose files as compose resolves them, published on the node."""
    _generated_configs()
    env = _compose_env()
    wanted = set(placement(n)[i])
    services: dict = {}
    volumes: dict = {}
    for stack in ("patroni", "pgbouncer", "traefik"):
        out = subprocess.run(
            ["docker-compose", "-p", f"dpg-{stack}", "-f", str(COMPOSE_DIR / f"{stack}.yml"), "config"],
            capture_output=True,
            text=True,
            env=env,
        )
        if out.returncode != 0:
            raise TopologyError(f"docker-compose config of {stack}.yml failed: {out.stderr.strip()[-300:]}")
        conf = yaml.safe_load(out.stdout)
        for name, svc in conf["services"].items():
            if name == "haproxy" and "haproxy-b" in wanted:
                b = yaml.safe_load(yaml.safe_dump(svc))
                b.update(container_name="dpg-haproxy-b", hostname="haproxy-b", ports=[])  # internal only
                b["networks"] = {"dpg": {"ipv4_address": env["DPG_IP_PREFIX"] + "." + HAPROXY_B_IP}}
                services["haproxy-b"] = b
            if name not in wanted:
                continue
            svc["labels"] = {**svc.get("labels", {}), **creation_labels(STACK), "io.dpg-chaos.host": host_name(i)}
            svc["ports"] = [p.replace("127.0.0.1:", "0.0.0.0:", 1) for p in svc.get("ports") or []]
            if name == "pgbouncer":
                svc["volumes"] = [
                    v.replace(str(COMPOSE_DIR / "config" / "pgbouncer" / "pgbouncer.ini"), str(WORK / "pgbouncer.ini"))
                    for v in svc["volumes"]
                ]
            if name.startswith("patroni-"):  # etcd members and the repository host by name, on the overlay
                svc.pop("depends_on", None)
            services[name] = svc
            for v in svc.get("volumes") or []:
                vol = v.split(":")[0]
                if not vol.startswith("/") and vol in (conf.get("volumes") or {}):
                    volumes[vol] = {"labels": creation_labels(STACK)}
        if "haproxy-b" in services:
            services["haproxy-b"]["labels"] = {**creation_labels(STACK), "io.dpg-chaos.host": host_name(i)}
    doc = {
        "version": "2.4",
        "services": services,
        "volumes": volumes,
        "networks": {"dpg": {"external": True, "name": NETWORK}},
    }
    path = WORK / f"docker-compose-host-{i}.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _compose(i: int, n: int, *args: str) -> None:
    node = node_of(i)
    env = {**_compose_env(), "DOCKER_HOST": node.url}
    run = subprocess.run(
        ["docker-compose", "-p", f"dpg-multihost-{i}", "-f", str(WORK / f"docker-compose-host-{i}.yml"), *args],
        capture_output=True,
        text=True,
        env=env,
    )
    if run.returncode != 0:
        raise TopologyError(f"host {i}: docker-compose {' '.join(args)} failed: {run.stderr.strip()[-400:]}")


def node_of(i: int) -> hosts.Node:
    return hosts.Node(node_name(i), NODE_API_BASE + i, NODE_IP.format(10 + i))


# ------------------------------------------------------------------------------------------------- lifecycle
def _ports_of(i: int, n: int) -> dict[int, int]:
    """Ports host i publishes on 127.0.0.1 (what its services publish on the node)."""
    envs = {
        "etcd-": ("DPG_PORT_ETCD_{}",),
        "patroni-": ("DPG_PORT_PATRONI_{}", "DPG_PORT_PATRONI_{}_API"),
    }
    ports = []
    for svc in placement(n)[i]:
        for prefix, keys in envs.items():
            if svc.startswith(prefix):
                ports += [published(k.format(svc.split("-")[1])) for k in keys]
        if svc == "haproxy":
            ports += [published(k) for k in ("DPG_PORT_HAPROXY_RW", "DPG_PORT_HAPROXY_RO", "DPG_PORT_HAPROXY_STATS")]
        if svc == "pgbouncer":
            ports.append(published("DPG_PORT_PGBOUNCER"))
        if svc == "traefik":
            ports += [published(k) for k in ("DPG_PORT_TRAEFIK_RW", "DPG_PORT_TRAEFIK_RO", "DPG_PORT_TRAEFIK_CITUS",
                                             "DPG_PORT_TRAEFIK_API", "DPG_PORT_TRAEFIK_OPS")]  # fmt: skip
    return {p: p for p in ports}


def running(client: docker.DockerClient | None = None) -> list[str]:
    client = client or docker.from_env()
    return sorted(c.name for c in hosts.nodes_of_ours(client) if c.labels.get("io.dpg-chaos.stack") == STACK)


def up(n: int | None = None) -> Path:
    """Start N hosts, join them in a Swarm, create the overlay, load images, start every host's services, wait."""
    from .images import docker_client

    n = n or count()
    local = docker_client()
    if running(local):
        raise TopologyError(f"hosts of ours are already up ({', '.join(running(local))}): `python -m topology down`")
    t0 = time.monotonic()
    nodes = []
    for i in range(1, n + 1):
        say(f"{host_name(i)}: starting node {node_name(i)} (engine on tcp://127.0.0.1:{NODE_API_BASE + i})")
        nodes.append(hosts.start_node(local, node_name(i), api_port=NODE_API_BASE + i, network=NODE_NETWORK,
                                      subnet=NODE_SUBNET, ip=NODE_IP.format(10 + i), publish=_ports_of(i, n),
                                      stack=STACK, mounts=(str(WORK),)))  # fmt: skip
    first = nodes[0].client()
    first.swarm.init(advertise_addr=nodes[0].ip, listen_addr="0.0.0.0:2377")
    token = first.swarm.attrs["JoinTokens"]["Manager"]
    for node in nodes[1:]:
        node.client().swarm.join(remote_addrs=[f"{nodes[0].ip}:2377"], join_token=token, advertise_addr=node.ip,
                                 listen_addr="0.0.0.0:2377")  # fmt: skip
    prefix = ".".join(SUBNET.split("/")[0].split(".")[:3])
    # every node's load-balancer endpoint takes an address of the overlay, by default the first free ones (.2,
    # .3, .4: the Patroni nodes' seed addresses, and their attach then timed out): dynamic addresses come from a
    # range the seed does not use, the seed's fixed ones stay free
    ipam = docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet=SUBNET, gateway=f"{prefix}.1", iprange=f"{prefix}.240/28")]
    )
    first.networks.create(NETWORK, driver="overlay", attachable=True, ipam=ipam, labels=creation_labels(STACK))
    say(f"swarm of {n} managers and overlay {NETWORK} ({SUBNET}) in {time.monotonic() - t0:.0f}s")
    hosts.load_images_into(nodes, list(IMAGES))
    order = ["etcd-", "pgbackrest", "patroni-", "haproxy", "pgbouncer", "traefik"]
    for i in range(1, n + 1):
        compose_for_host(i, n)
    for prefix in order:  # start by role across hosts: the DCS first, then the databases, then the routers
        for i in range(1, n + 1):
            svcs = [s for s in placement(n)[i] if s.startswith(prefix)]
            if svcs:
                _compose(i, n, "up", "-d", "--no-deps", *svcs)
    path = inventory_file(n)
    from . import health, inventory
    from .timeouts import TIMEOUTS

    with inventory.using(inventory.load(path)):
        health.wait_healthy(None, ["patroni", "pgbouncer", "traefik"], within=2 * TIMEOUTS.stack_up)
    say(f"{n} hosts up and healthy in {time.monotonic() - t0:.0f}s; inventory {path}")
    return path


def down() -> list[str]:
    """Remove every host of ours (and so everything on it), their volumes and the hosts' network."""
    local = docker.from_env()
    removed = hosts.remove_nodes(local, stack=STACK)
    for net in local.networks.list(names=[NODE_NETWORK]):
        net.reload()
        if not net.attrs.get("Containers"):
            net.remove()
            removed.append(f"network {NODE_NETWORK}")
    return removed
