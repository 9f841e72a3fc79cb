"""`python -m topology discover`: a starting inventory from a running DPG deployment, for the user to edit.

From one Patroni REST URL: the members and their addresses (`/cluster`), the scope (`/patroni`); then, on the
Docker engine(s) given, the container behind each member (matched by address), its published PostgreSQL and REST
ports, the etcd members from the Patroni configuration inside the container (`etcd3.hosts`, `namespace`), and the
routers by what they run and publish: HAProxy, PgBouncer, Traefik, Redis, a stand-alone PostgreSQL with pgvector
(the vector DB), Prometheus. Each published PostgreSQL port is asked what it reaches (primary or replica, Citus or
not), so RW and RO ports are told apart by the database, not guessed from numbers. Everything it could not find is
listed at the top of the file and on stderr; nothing is changed anywhere (read-only: GETs, `docker inspect`,
`docker top`, `cat` of the Patroni configuration, `SELECT`s).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psycopg
import requests
import yaml

from .errors import TopologyError
from .inventory import LOCAL_ENGINE, _is_loopback

PROCESS_ROLES = (  # (role, regex over the container's process command lines)
    ("haproxy", r"(^|/)haproxy\b"),
    ("pgbouncer", r"(^|/)pgbouncer\b"),
    ("traefik", r"(^|/)traefik\b"),
    ("redis", r"(^|/)redis-server\b"),
    ("prometheus", r"(^|/)prometheus\b"),
    ("toxiproxy", r"toxiproxy|faultproxy"),
    ("postgres", r"(^|/)(postgres|postmaster)\b"),
)


@dataclass
class Found:
    engines: dict[str, str]
    inventory: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Seen:
    engine: str
    container: Any
    nets: dict[str, tuple[str, set[str]]]  # network -> (address, names it resolves by there: name + aliases)
    ports: dict[int, tuple[str, int]]  # container port -> published (host, port) as the harness reaches it
    commands: list[str]


def _published_host(engine_url: str, host_ip: str) -> str:
    """The address a published port is reached at from here."""
    if host_ip in ("", "0.0.0.0", "::") or host_ip.startswith("127."):
        u = urlsplit(engine_url)
        return "127.0.0.1" if u.scheme in ("unix", "npipe", "") or not u.hostname else u.hostname
    return host_ip


def _survey(name: str, url: str, client) -> list[Seen]:
    out = []
    for c in client.containers.list():
        nets = {
            net: (n.get("IPAddress") or "", {c.name, *(n.get("Aliases") or [])})
            for net, n in ((c.attrs.get("NetworkSettings") or {}).get("Networks") or {}).items()
        }
        ports = {}
        for spec, binds in ((c.attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
            if binds and spec.endswith("/tcp"):
                b = binds[0]
                ports[int(spec.split("/")[0])] = (_published_host(url, b.get("HostIp", "")), int(b["HostPort"]))
        try:
            top = c.top(ps_args="-eo pid,args")  # dockerd needs the PID column
            commands = [" ".join(p[1:]) for p in top.get("Processes") or []]
        except Exception:  # docker top refused (some engines): fall back on the configured command
            commands = [" ".join((c.attrs.get("Config") or {}).get("Cmd") or [])]
        out.append(Seen(name, c, nets, ports, commands))
    return out


def _hostport(seen: Seen, port: int) -> str | None:
    hp = seen.ports.get(port)
    return f"{hp[0]}:{hp[1]}" if hp else None


def _pg_probe(hostport: str, user: str, password: str, dbname: str) -> dict[str, Any] | None:
    host, port = hostport.rsplit(":", 1)
    try:
        with psycopg.connect(
            host=host, port=port, user=user, password=password, dbname=dbname, connect_timeout=3, autocommit=True
        ) as conn:
            conn.execute("SET statement_timeout = 3000")
            rec = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            exts = {r[0] for r in conn.execute("SELECT extname FROM pg_extension").fetchall()}
            return {"in_recovery": rec, "citus": "citus" in exts, "vector": "vector" in exts}
    except psycopg.Error:
        return None


def _http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def _container_selector(seen: Seen) -> dict[str, Any]:
    spec: dict[str, Any] = {"container": seen.container.name}
    if seen.engine != LOCAL_ENGINE:
        spec["engine"] = seen.engine
    return spec


def discover(
    patroni_url: str,
    engines: dict[str, str],
    *,
    name: str,
    app_user: str,
    app_password_env: str,
    ro_user: str,
    ro_password_env: str,
    dbname: str,
    allow_remote: bool = False,
) -> Found:
    import docker

    found = Found(engines)
    host = urlsplit(patroni_url).hostname or ""
    if not allow_remote and not _is_loopback(host):
        raise TopologyError(f"--patroni-url {patroni_url}: not a loopback address; pass --remote-addresses to allow it")
    try:
        cluster = requests.get(patroni_url.rstrip("/") + "/cluster", timeout=3).json()
        me = requests.get(patroni_url.rstrip("/") + "/patroni", timeout=3).json()
    except (requests.RequestException, ValueError) as exc:
        raise TopologyError(f"no Patroni REST API at {patroni_url}: {exc}") from None
    scope = (me.get("patroni") or {}).get("scope", "dpg")
    password = os.environ.get(app_password_env)
    ro_password = os.environ.get(ro_password_env)
    if password is None:
        found.notes.append(f"{app_password_env} is not set: ports are not told apart by what they reach")

    seen: list[Seen] = []
    for ename, url in engines.items():
        try:
            client = docker.DockerClient(base_url=url, timeout=30, use_ssh_client=url.startswith("ssh://"))
            client.ping()
        except Exception as exc:
            raise TopologyError(f"Docker engine {ename} ({url}) is not reachable: {type(exc).__name__}") from None
        seen += _survey(ename, url, client)

    def by_address(addr: str, network: str | None = None) -> Seen | None:
        """The one container that `addr` (an address or a DNS name) reaches, on `network` if given; None when
        there is none or several (a guess could point a fault at someone else's container)."""
        hits = [
            s
            for s in seen
            for net, (ip, names) in s.nets.items()
            if (network is None or net == network) and (addr == ip or addr in names)
        ]
        unique = {id(s.container): s for s in hits}
        if len(unique) > 1:
            found.notes.append(f"{addr} matches several containers ({', '.join(s.container.name for s in hits)})")
            return None
        return next(iter(unique.values()), None)

    inv: dict[str, Any] = {
        "version": 1,
        "name": name,
        "faults": "forbidden",
        "engines": {n: {"url": u} for n, u in engines.items()},
        "database": {
            "name": dbname,
            "app": {"user": app_user, "password": {"env": app_password_env}},
            "readonly": {"user": ro_user, "password": {"env": ro_password_env}},
        },
        "patroni": {"scope": scope, "namespace": "/service", "members": {}},
        "etcd": {"members": {}},
        "services": {},
        "endpoints": {},
    }
    if allow_remote:
        inv["remote_addresses"] = "allowed"
    used: set[int] = set()
    etcd_hosts: list[str] = []
    for m in cluster.get("members") or []:
        s = by_address(m.get("host", ""))
        if s is None:
            found.missing.append(
                f"Patroni member {m['name']}: no container with address {m.get('host')} on the engines"
            )
            continue
        used.add(id(s.container))
        api_port = urlsplit(m.get("api_url", "")).port or 8008
        pg, api = _hostport(s, int(m.get("port") or 5432)), _hostport(s, api_port)
        if not pg or not api:
            found.missing.append(f"Patroni member {m['name']}: ports {m.get('port')}/{api_port} are not published")
            continue
        inv["patroni"]["members"][m["name"]] = {**_container_selector(s), "api": f"http://{api}", "postgres": pg}
        if inv.get("network") is None and s.nets:  # the network the member's address is on
            inv["network"] = next((net for net, (ip, _) in s.nets.items() if ip == m.get("host")), next(iter(s.nets)))
        if not etcd_hosts:
            etcd_hosts, namespace = _etcd_from_patroni_config(s)
            if namespace:
                inv["patroni"]["namespace"] = "/" + namespace.strip("/")
    for hostport in etcd_hosts:
        h, _, p = hostport.rpartition(":")
        s = by_address(h, inv.get("network"))  # the name resolves where Patroni resolves it
        if s is None:
            found.missing.append(f"etcd member {hostport}: no single container with that name or address")
            continue
        used.add(id(s.container))
        client_url = _hostport(s, int(p or 2379))
        if not client_url:
            found.missing.append(f"etcd member {h}: client port {p} is not published")
            continue
        inv["etcd"]["members"][h] = {**_container_selector(s), "client_url": f"http://{client_url}"}
    if not etcd_hosts:
        found.missing.append("etcd: the Patroni configuration names no etcd3/etcd hosts (edit `etcd.members`)")

    for s in seen:
        if id(s.container) in used:
            continue
        role = next((r for r, rx in PROCESS_ROLES if any(re.search(rx, cmd) for cmd in s.commands)), None)
        if role is None:
            continue
        _classify(role, s, inv, found, app_user, password, ro_user, ro_password, dbname)
    for key in ("haproxy_rw", "haproxy_ro", "haproxy_stats", "pgbouncer", "traefik_rw", "traefik_ro", "traefik_api"):
        if key not in inv["endpoints"]:
            found.missing.append(f"endpoints.{key}: not found")
    if not inv["services"]:
        del inv["services"]
    found.inventory = inv
    return found


def _etcd_from_patroni_config(s: Seen) -> tuple[list[str], str | None]:
    """etcd hosts and namespace from the Patroni configuration file the member's patroni process was started with."""
    path = next((m.group(1) for cmd in s.commands if (m := re.search(r"patroni\s+(\S+\.ya?ml)", cmd))), None)
    env = dict(e.split("=", 1) for e in (s.container.attrs.get("Config") or {}).get("Env") or [] if "=" in e)
    hosts_env = env.get("PATRONI_ETCD3_HOSTS") or env.get("PATRONI_ETCD_HOSTS")
    if path:
        res = s.container.exec_run(["cat", path])
        if res.exit_code == 0:
            with contextlib.suppress(yaml.YAMLError):
                conf = yaml.safe_load(res.output.decode(errors="replace")) or {}
                dcs = conf.get("etcd3") or conf.get("etcd") or {}
                hosts = dcs.get("hosts") or ([dcs["host"]] if dcs.get("host") else [])
                hosts = hosts.split(",") if isinstance(hosts, str) else list(hosts)
                return [h.strip() for h in hosts if h.strip()], conf.get("namespace")
    if hosts_env:
        return [h.strip().strip("'\"") for h in hosts_env.strip("[]").split(",") if h.strip()], env.get(
            "PATRONI_NAMESPACE"
        )
    return [], None


def _classify(role, s: Seen, inv, found: Found, app_user, password, ro_user, ro_password, dbname) -> None:
    eps, services = inv["endpoints"], inv["services"]
    published = [f"{h}:{p}" for h, p in s.ports.values()]
    if role == "haproxy":
        services.setdefault("haproxy", _container_selector(s))
        for hp in published:
            if _http_ok(f"http://{hp}/;csv"):
                eps["haproxy_stats"] = f"http://{hp}/;csv"
            elif password and (r := _pg_probe(hp, app_user, password, dbname)):
                eps["haproxy_ro" if r["in_recovery"] else "haproxy_rw"] = hp
    elif role == "pgbouncer":
        services.setdefault("pgbouncer", _container_selector(s))
        if published:
            eps["pgbouncer"] = published[0]
    elif role == "traefik":
        services.setdefault("traefik", _container_selector(s))
        for hp in published:
            if _http_ok(f"http://{hp}/api/version"):
                eps["traefik_api"] = f"http://{hp}"
            elif password and (r := _pg_probe(hp, app_user, password, dbname)):
                key = "traefik_citus" if r["citus"] else ("traefik_ro" if r["in_recovery"] else "traefik_rw")
                eps.setdefault(key, hp)
            elif ro_password and (r := _pg_probe(hp, ro_user, ro_password, dbname)) and r["in_recovery"]:
                eps.setdefault("traefik_ro", hp)
    elif role == "redis":
        services.setdefault("redis", _container_selector(s))
        if published:
            eps["redis"] = published[0]
    elif role == "prometheus" and published:
        eps["prometheus"] = f"http://{published[0]}"
    elif role == "toxiproxy" and s.ports.get(8474):
        eps["toxiproxy"] = f"http://{_hostport(s, 8474)}"
    elif role == "postgres" and published and password:
        r = _pg_probe(published[0], app_user, password, dbname)
        if r and r["vector"] and not r["citus"]:
            services.setdefault("vector-db", _container_selector(s))
            eps["vector"] = published[0]
        elif r and r["citus"]:
            found.notes.append(f"{s.container.name}: a Citus node at {published[0]} (edit endpoints.citus_*)")


def render(found: Found) -> str:
    head = ["# dpg-chaos inventory written by `python -m topology discover`: check it, then edit what is missing."]
    head += [
        "# Schema: topology/inventory.schema.json; every key: docs/target.md. `faults: forbidden` until you decide."
    ]
    head += [f"# NOT FOUND: {m}" for m in found.missing] + [f"# NOTE: {n}" for n in found.notes]
    return "\n".join(head) + "\n" + yaml.safe_dump(found.inventory, sort_keys=False, default_flow_style=False)


def main(args) -> int:
    engines = dict(
        e.split("=", 1) if "=" in e else (LOCAL_ENGINE if i == 0 else f"engine-{i + 1}", e)
        for i, e in enumerate(args.engine or ["unix:///var/run/docker.sock"])
    )
    found = discover(
        args.patroni_url,
        engines,
        name=args.name,
        app_user=args.app_user,
        app_password_env=args.app_password_env,
        ro_user=args.ro_user,
        ro_password_env=args.ro_password_env,
        dbname=args.dbname,
        allow_remote=args.remote_addresses,
    )
    text = render(found)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    for m in found.missing:
        print(f"discover: not found: {m}", file=sys.stderr)
    return 0
