"""CI's stand-in for the cluster team's own deployment: a copy of DPG that this project did NOT start.

    foreign_dpg.py up [--node]             start the copy (locally, or on a fresh Docker-in-Docker node of ours)
    foreign_dpg.py snapshot FILE [--node]  record every foreign container's id/state and every foreign volume
    foreign_dpg.py check FILE [--node]     the same containers (same ids) running and healthy, the same volumes,
                                           and nothing labelled as ours left on that engine
    foreign_dpg.py down [--node]           remove the copy (and the node)
    foreign_dpg.py plant | verify-planted  the inherited-label regression: user containers from images built
                                           FROM ours must survive `topology down`, the clean slate, `chaos heal`

The copy runs from the project's images, under another compose project name (`seedcopy`), with the seed's own
container names (patroni-1..3, etcd-1..3, haproxy, pgbouncer, traefik, ruvector-db, dpg-redis-dev), other
published ports (+30000) and another subnet (172.26.0.0/16), and without any label of ours: compose's output for
our files, with every io.dpg-chaos label removed. The etcd members also lose NET_ADMIN, so network faults on them
must go through the helper container (chaos/faults/netns.py), as they would on a target without it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import docker
import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from topology import hosts  # noqa: E402
from topology.names import MANAGED_LABEL  # noqa: E402

PROJECT = "seedcopy"
NETWORK, SUBNET, PREFIX = "seed-unified-network", "172.26.0.0/16", "172.26.0"
OFFSET = 30000
STACKS = ("patroni", "pgbouncer", "traefik", "vector", "redis")
SEED_NAMES = {"vector-db": "ruvector-db", "redis": "dpg-redis-dev"}
PORTS = {  # DPG_PORT_* -> the copy's host port
    "DPG_PORT_HAPROXY_RW": 5000, "DPG_PORT_HAPROXY_RO": 5001, "DPG_PORT_HAPROXY_STATS": 7000,
    "DPG_PORT_PATRONI_1": 5433, "DPG_PORT_PATRONI_2": 5434, "DPG_PORT_PATRONI_3": 5435,
    "DPG_PORT_PATRONI_1_API": 8008, "DPG_PORT_PATRONI_2_API": 8009, "DPG_PORT_PATRONI_3_API": 8010,
    "DPG_PORT_ETCD_1": 23791, "DPG_PORT_ETCD_2": 23792, "DPG_PORT_ETCD_3": 23793,
    "DPG_PORT_PGBOUNCER": 6432, "DPG_PORT_TRAEFIK_RW": 5500, "DPG_PORT_TRAEFIK_RO": 5501,
    "DPG_PORT_TRAEFIK_CITUS": 5502, "DPG_PORT_TRAEFIK_API": 8080, "DPG_PORT_TRAEFIK_OPS": 8081,
    "DPG_PORT_VECTOR": 5432, "DPG_PORT_REDIS": 6379,
}  # fmt: skip
NODE = {"name": "dpg-ci-remote-engine", "api_port": 23750, "network": "dpg-ci-nodes", "subnet": "172.30.0.0/24",
        "ip": "172.30.0.10"}  # fmt: skip
IMAGES = [
    "dpg/etcd:latest",
    "dpg/postgres:latest",
    "dpg/haproxy:latest",
    "dpg/pgbouncer:latest",
    "dpg/traefik:latest",
    "dpg/redis:latest",
]  # fmt: skip; nettools: loaded by the first network fault
WORK = ROOT / ".cache" / "foreign"


def say(msg: str) -> None:
    print(f"[foreign] {msg}", flush=True)


def engine_url(node: bool) -> str:
    return f"tcp://127.0.0.1:{NODE['api_port']}" if node else "unix:///var/run/docker.sock"


def client(node: bool) -> docker.DockerClient:
    return docker.DockerClient(base_url=engine_url(node), timeout=120)


def compose_file(node: bool) -> Path:
    """Our compose files as compose resolves them, renamed, relabelled (no label of ours) and re-ported."""
    env = {**os.environ, "DPG_IP_PREFIX": PREFIX, "DPG_NETWORK": NETWORK}
    env.update({k: str(v + OFFSET) for k, v in PORTS.items()})
    merged: dict = {"version": "2.4", "services": {}, "volumes": {}, "networks": {}}
    for stack in STACKS:
        out = subprocess.run(
            ["docker-compose", "-p", PROJECT, "-f", str(ROOT / "compose" / f"{stack}.yml"), "config"],
            capture_output=True, text=True, env=env, check=True,
        )  # fmt: skip
        conf = yaml.safe_load(out.stdout)
        for name, svc in conf.get("services", {}).items():
            svc["container_name"] = SEED_NAMES.get(name, name)
            svc["labels"] = {k: v for k, v in (svc.get("labels") or {}).items() if not k.startswith("io.dpg-chaos")}
            if name.startswith("etcd-"):
                svc.pop("cap_add", None)  # a target without NET_ADMIN: network faults need the helper
            if node:  # published on the node's own interfaces; the node publishes them on 127.0.0.1 here
                svc["ports"] = [p.replace("127.0.0.1:", "0.0.0.0:", 1) for p in svc.get("ports") or []]
            merged["services"][name] = svc
        for name, vol in (conf.get("volumes") or {}).items():
            vol = dict(vol or {})
            vol["labels"] = {k: v for k, v in (vol.get("labels") or {}).items() if not k.startswith("io.dpg-chaos")}
            merged["volumes"][name] = vol
        merged["networks"].update(conf.get("networks") or {})
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"docker-compose{'-node' if node else ''}.yml"
    path.write_text(yaml.safe_dump(merged, sort_keys=False))
    return path


def compose(node: bool, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": engine_url(node)}
    cmd = ["docker-compose", "-p", PROJECT, "-f", str(WORK / f"docker-compose{'-node' if node else ''}.yml"), *args]
    return subprocess.run(cmd, env=env, check=check, capture_output=True, text=True)


def wait_ready(within: float = 240.0) -> None:
    """One leader, two streaming replicas, HAProxy routing writes: what the cluster team would call 'up'."""
    deadline = time.monotonic() + within
    last = ""
    while time.monotonic() < deadline:
        try:
            members = requests.get(f"http://127.0.0.1:{8008 + OFFSET}/cluster", timeout=2).json()["members"]
            roles = sorted(m["role"] for m in members)
            streaming = [m for m in members if m["role"] != "leader" and m.get("state") == "streaming"]
            if roles.count("leader") == 1 and len(streaming) == 2:
                say(f"cluster ready: {[(m['name'], m['role'], m.get('state')) for m in members]}")
                return
            last = str([(m["name"], m["role"], m.get("state")) for m in members])
        except (requests.RequestException, ValueError, KeyError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(2)
    raise SystemExit(f"[foreign] the copy did not become ready within {within:.0f}s: {last}")


def up(node: bool) -> None:
    if node:
        local = docker.from_env()
        publish = {v + OFFSET: v + OFFSET for v in PORTS.values()}
        say(f"starting node {NODE['name']} (its engine on {engine_url(True)})")
        n = hosts.start_node(local, NODE["name"], api_port=NODE["api_port"], network=NODE["network"],
                             subnet=NODE["subnet"], ip=NODE["ip"], publish=publish, stack="ci-remote")  # fmt: skip
        hosts.load_images(n, IMAGES)
    c = client(node)
    try:
        c.networks.get(NETWORK)
    except docker.errors.NotFound:
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=SUBNET)])
        c.networks.create(NETWORK, driver="bridge", ipam=ipam)
    compose_file(node)
    say(f"docker-compose -p {PROJECT} up -d ({', '.join(STACKS)}) on {engine_url(node)}")
    compose(node, "up", "-d")
    wait_ready()


def foreign_state(node: bool) -> dict:
    c = client(node)
    containers = {
        x.name: {"id": x.id, "status": x.status, "health": (x.attrs.get("State", {}).get("Health") or {}).get("Status")}
        for x in c.containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"})
    }
    volumes = sorted(v.name for v in c.volumes.list(filters={"label": f"com.docker.compose.project={PROJECT}"}))
    return {"containers": containers, "volumes": volumes}


def ours_left(node: bool) -> list[str]:
    c = client(node)
    flt = {"label": f"{MANAGED_LABEL}=true"}
    left = [f"container {x.name}" for x in c.containers.list(all=True, filters=flt)]
    left += [f"volume {v.name}" for v in c.volumes.list(filters=flt)]
    left += [f"network {n.name}" for n in c.networks.list(filters=flt)]
    if not node:  # on the local engine the remote-engine node itself is ours, and expected while it runs
        left = [x for x in left if NODE["name"] not in x and NODE["network"] not in x]
    return left


def check(before_file: Path, node: bool, *, within: float = 180.0) -> int:
    before = json.loads(before_file.read_text())
    deadline = time.monotonic() + within
    while True:  # health is re-evaluated by Docker every 10 s: allow it to catch up after the last heal
        now = foreign_state(node)
        problems = []
        for name, was in before["containers"].items():
            is_ = now["containers"].get(name)
            if is_ is None:
                problems.append(f"foreign container {name} is gone")
            elif is_["id"] != was["id"]:
                problems.append(f"foreign container {name} was re-created ({was['id'][:12]} -> {is_['id'][:12]})")
            elif is_["status"] != "running":
                problems.append(f"foreign container {name} is {is_['status']}")
            elif was["health"] and is_["health"] != "healthy":
                problems.append(f"foreign container {name} is {is_['health']}")
        problems += [f"foreign volume {v} is gone" for v in before["volumes"] if v not in now["volumes"]]
        problems += [f"left behind: {x}" for x in ours_left(node)]
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(5)
    for p in problems:
        say(f"CHECK FAILED: {p}")
    if not problems:
        say(f"check passed: {len(before['containers'])} foreign containers unchanged, running and healthy; "
            f"{len(before['volumes'])} volumes kept; nothing of ours left on {engine_url(node)}")  # fmt: skip
    return 1 if problems else 0


def down(node: bool) -> None:
    if node:
        say(f"removing node {NODE['name']} (and with it the copy inside)")
        for line in hosts.remove_nodes(docker.from_env(), stack="ci-remote"):
            say(line)
        local = docker.from_env()
        for n in local.networks.list(names=[NODE["network"]]):
            n.remove()
        return
    if (WORK / "docker-compose.yml").exists():
        compose(False, "down", "-v", "--remove-orphans", check=False)
    for n in client(False).networks.list(names=[NETWORK]):
        n.remove()


# --------------------------------------------------------------------------- the inherited-label regression
PLANTED = {  # container -> (image, volume, state): a user's own containers next to ours
    "user-pg-variant": ("dpgci-user/pg-variant:latest", "user-pg-variant-data", "running"),
    "user-old-variant": ("dpgci-user/old-variant:latest", "user-old-variant-data", "paused"),
}


def plant() -> None:
    """A user's Postgres variant built FROM dpg/postgres, and one FROM an image that (like this project's images
    before the fix) carries io.dpg-chaos.managed=true; each with a volume, one of them paused."""
    local = docker.from_env()
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "old").mkdir(exist_ok=True)
    (WORK / "old" / "Dockerfile").write_text(f"FROM dpg/base:trixie\nLABEL {MANAGED_LABEL}=true\n")
    local.images.build(path=str(WORK / "old"), tag="dpgci-user/old-dpg-base:latest", rm=True)
    for tag, parent in (("dpgci-user/pg-variant:latest", "dpg/postgres:latest"),
                        ("dpgci-user/old-variant:latest", "dpgci-user/old-dpg-base:latest")):  # fmt: skip
        d = WORK / tag.split("/")[1].split(":")[0]
        d.mkdir(exist_ok=True)
        # dpg/postgres ends with USER postgres: a user's variant switches to root for its own step, as theirs would
        (d / "Dockerfile").write_text(f"FROM {parent}\nUSER root\nRUN echo 'one more extension' > /etc/user-variant\n")
        local.images.build(path=str(d), tag=tag, rm=True)
    for name, (image, volume, state) in PLANTED.items():
        local.volumes.create(volume)
        c = local.containers.run(image, ["sleep", "infinity"], name=name, detach=True,
                                 volumes={volume: {"bind": "/data", "mode": "rw"}}, entrypoint=[])  # fmt: skip
        if state == "paused":
            c.pause()
    snap = {n: local.containers.get(n).id for n in PLANTED}
    (WORK / "planted.json").write_text(json.dumps(snap))
    say(f"planted {', '.join(PLANTED)} (images FROM dpg/postgres and FROM an image labelled {MANAGED_LABEL})")


def verify_planted(*, remove: bool) -> int:
    local = docker.from_env()
    ids = json.loads((WORK / "planted.json").read_text())
    problems = []
    for name, (_image, volume, state) in PLANTED.items():
        try:
            c = local.containers.get(name)
            if c.id != ids[name]:
                problems.append(f"{name} was re-created")
            elif c.status != state:
                problems.append(f"{name} is {c.status}, was {state}")
        except docker.errors.NotFound:
            problems.append(f"{name} was removed")
        try:
            local.volumes.get(volume)
        except docker.errors.NotFound:
            problems.append(f"volume {volume} was removed")
    for p in problems:
        say(f"INHERITED-LABEL REGRESSION: {p}")
    if not problems:
        say("planted user containers and volumes survived untouched (same ids, same state)")
    if remove:
        for name, (_image, volume, _state) in PLANTED.items():
            for x in local.containers.list(all=True, filters={"name": f"^{name}$"}):
                x.remove(force=True)
            for v in local.volumes.list(filters={"name": volume}):
                v.remove(force=True)
        for tag in ("dpgci-user/pg-variant:latest", "dpgci-user/old-variant:latest", "dpgci-user/old-dpg-base:latest"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                local.images.remove(tag, force=True)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=".ci/foreign_dpg.py", description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["up", "snapshot", "check", "down", "plant", "verify-planted"])
    p.add_argument("file", nargs="?")
    p.add_argument("--node", action="store_true", help="on a Docker-in-Docker node reached over tcp://")
    p.add_argument("--remove", action="store_true", help="verify-planted: remove the planted things afterwards")
    a = p.parse_args(argv)
    if a.command == "up":
        up(a.node)
    elif a.command == "snapshot":
        Path(a.file).write_text(json.dumps(foreign_state(a.node), indent=2))
        say(f"snapshot of {len(foreign_state(a.node)['containers'])} foreign containers written to {a.file}")
    elif a.command == "check":
        return check(Path(a.file), a.node)
    elif a.command == "down":
        down(a.node)
    elif a.command == "plant":
        plant()
    elif a.command == "verify-planted":
        return verify_planted(remove=a.remove)
    return 0


if __name__ == "__main__":
    sys.exit(main())
