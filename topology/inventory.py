"""A DPG deployment described by role (Jepsen's `--nodes-file`, grown up): which container on which Docker engine
plays each part, where the entry points listen, where Patroni's REST API and etcd's client URLs are, and how to
log in — credentials by reference only (an environment variable or a file), never inline.

There is one code path. Every suite, health gate, fault and checker reads the deployment through `current()`:
- the **embedded** inventory (the default) is the copy of DPG this project builds and starts itself, derived
  from `topology.stacks` (compose/) and the DPG_PORT_* settings in `embedded()`;
- a **target** (`pytest --target FILE` or `DPG_TARGET=FILE`) is a deployment the suite did not start. Nothing in
  it is built, started, stopped, recreated or removed except by a fault's own inject and heal.

The file format is `topology/inventory.schema.json` (docs/target.md explains every key); `load()` turns every
mistake into one line naming the key, and the whole list into one TopologyError (exit 2 at the CLI).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import yaml

from .errors import TopologyError

if TYPE_CHECKING:  # pragma: no cover
    from docker import DockerClient
    from docker.models.containers import Container

SCHEMA_FILE = Path(__file__).with_name("inventory.schema.json")
LOCAL_ENGINE = "local"

#: The embedded topology's members (compose/patroni.yml, compose/citus.yml): the seed's names.
EMBEDDED_PATRONI = ("patroni-1", "patroni-2", "patroni-3")
EMBEDDED_ETCD = ("etcd-1", "etcd-2", "etcd-3")
EMBEDDED_CITUS = ("citus-coordinator", "citus-worker-1", "citus-worker-2")
EMBEDDED_PREFIX = "dpg-"


# ------------------------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class Secret:
    """A credential by reference. `default` exists only for the embedded topology's test values."""

    env: str | None = None
    file: str | None = None
    default: str | None = field(default=None, repr=False)

    def reveal(self) -> str:
        if self.env:
            value = os.environ.get(self.env, self.default)
            if value is None:
                raise TopologyError(f"credential: environment variable {self.env} is not set")
            return value
        if self.file:
            try:
                return Path(self.file).expanduser().read_text().rstrip("\n")
            except OSError as exc:
                raise TopologyError(f"credential: cannot read {self.file}: {exc.strerror}") from None
        if self.default is not None:
            return self.default
        raise TopologyError("credential without a source")

    def describe(self) -> str:
        """Where the secret comes from, safe to print (never the value)."""
        return f"env {self.env}" if self.env else f"file {self.file}" if self.file else "built-in test value"

    def __repr__(self) -> str:
        return f"Secret({self.describe()})"


@dataclass(frozen=True)
class Login:
    user: str
    password: Secret = field(repr=False)


@dataclass(frozen=True)
class EngineSpec:
    name: str
    url: str
    tls: dict[str, Any] | None = None

    def describe(self) -> str:
        return f"{self.name} ({self.url}{', tls' if self.tls else ''})"


@dataclass(frozen=True)
class Selector:
    """Exactly one of: a container name, a regular expression over names (searched), a label `key=value`."""

    name: str | None = None
    regex: str | None = None
    label: str | None = None

    def describe(self) -> str:
        return self.name or (f"re:{self.regex}" if self.regex else f"label:{self.label}")


@dataclass(frozen=True)
class Role:
    """One container of the deployment: what it is (`role`, e.g. patroni-1, haproxy), where, and its stack."""

    role: str
    selector: Selector
    engine: str
    stack: str


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class PatroniMember:
    name: str  # Patroni's member name (/cluster, the leader key); also its container's role
    api: str
    postgres: HostPort


@dataclass(frozen=True)
class EtcdMember:
    name: str
    client_url: str


#: stack -> what an inventory must describe for the stack's tests to run against it
STACK_NEEDS: dict[str, tuple[str, ...]] = {
    "patroni": ("endpoints.haproxy_rw", "endpoints.haproxy_ro", "endpoints.haproxy_stats"),
    "pgbouncer": ("endpoints.pgbouncer",),
    "traefik": ("endpoints.traefik_rw", "endpoints.traefik_ro", "endpoints.traefik_api"),
    "vector": ("endpoints.vector",),
    "redis": ("endpoints.redis",),
    "toxiproxy": ("endpoints.toxiproxy",),
    "monitoring": ("endpoints.prometheus",),
    "citus": ("endpoints.citus_coordinator",),
    "grafana": ("endpoints.grafana",),
}


@dataclass(frozen=True)
class HostNode:
    """A host that is a container on this machine's engine (a Docker-in-Docker node): host faults act on it."""

    name: str  # the engine's name in the inventory
    container: str
    address: str | None = None


@dataclass(frozen=True)
class Inventory:
    name: str
    kind: Literal["embedded", "multihost", "target"]
    source: str
    faults_allowed: bool
    remote_allowed: bool
    engines: dict[str, EngineSpec]
    roles: dict[str, Role]
    patroni: tuple[PatroniMember, ...]
    etcd: tuple[EtcdMember, ...]
    endpoints: dict[str, HostPort]
    urls: dict[str, str]
    citus_workers: tuple[HostPort, ...] = ()
    database: str = "distributed_postgres_cluster"
    logins: dict[str, Login] = field(default_factory=dict, repr=False)
    network: str | None = None
    patroni_scope: str = "dpg"
    patroni_namespace: str = "/service"
    hosts: dict[str, HostNode] = field(default_factory=dict)

    # -- identity
    @property
    def is_target(self) -> bool:
        return self.kind == "target"

    @property
    def rebuildable(self) -> bool:
        """Only the single-host embedded topology is (re)built here with compose: a target never is, and a multi-host
        deployment is started and removed as a whole (topology/multihost.py), never recreated stack by stack."""
        return self.kind == "embedded"

    @property
    def patroni_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.patroni)

    @property
    def etcd_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.etcd)

    def member(self, name: str) -> PatroniMember:
        for m in self.patroni:
            if m.name == name:
                return m
        known = ", ".join(self.patroni_names)
        raise TopologyError(f"inventory {self.name}: no Patroni member {name!r} (known: {known})")

    def etcd_member(self, name: str) -> EtcdMember:
        for m in self.etcd:
            if m.name == name:
                return m
        raise TopologyError(f"inventory {self.name}: no etcd member {name!r} (known: {', '.join(self.etcd_names)})")

    def login(self, which: str) -> Login:
        try:
            return self.logins[which]
        except KeyError:
            raise TopologyError(f"inventory {self.name}: no `database.{which}` login") from None

    def endpoint(self, key: str) -> HostPort:
        try:
            return self.endpoints[key]
        except KeyError:
            raise TopologyError(f"inventory {self.name}: no `endpoints.{key}`") from None

    def url(self, key: str) -> str:
        try:
            return self.urls[key]
        except KeyError:
            raise TopologyError(f"inventory {self.name}: no `endpoints.{key}`") from None

    def has(self, key: str) -> bool:
        """Whether `endpoints.<name>` is described (host:port entry points and URLs alike)."""
        name = key.partition(".")[2]
        return name in self.endpoints or name in self.urls

    def stacks(self) -> list[str]:
        """The stacks this inventory describes (embedded: all of them)."""
        return [s for s, needs in STACK_NEEDS.items() if all(self.has(k) for k in needs)]

    def missing_for(self, stack: str) -> list[str]:
        return [k for k in STACK_NEEDS.get(stack, ()) if not self.has(k)]

    def role(self, role: str) -> Role:
        try:
            return self.roles[role]
        except KeyError:
            raise TopologyError(f"inventory {self.name}: no container for role {role!r}") from None

    def expand(self, spec: str) -> tuple[tuple[str, ...], str]:
        """The roles a fault target spec may touch, and when it is decided (a test's `faults` declaration).

        Specs: `patroni-leader`, `patroni-replica`, `patroni-member` (one Patroni member, chosen when the test
        runs); `etcd-member`, `etcd-raft-leader`, `etcd-leader-client` (one etcd member, chosen at run time);
        `etcd-quorum` (several etcd members); `patroni-api`, `toxiproxy-api` (an API call, no container);
        `stack:<name>` (every container of a stack, recreated with other settings); `testbed` (containers the
        test created itself); any role of the inventory (haproxy, pgbouncer, traefik, redis, vector-db, ...)."""
        if spec in ("patroni-leader", "patroni-replica", "patroni-member"):
            return self.patroni_names, f"one of them, the {spec.split('-')[1]} when the test runs"
        if spec in ("etcd-member", "etcd-raft-leader", "etcd-leader-client"):
            return self.etcd_names, f"one of them ({spec}) when the test runs"
        if spec == "etcd-quorum":
            return self.etcd_names, "a majority of them"
        if spec in ("patroni-api", "toxiproxy-api"):
            return (), "an API call; no container is touched"
        if spec == "testbed":
            return (), "containers of ours the test creates itself; nothing of the deployment"
        if spec.startswith("stack:"):
            stack = spec.split(":", 1)[1]
            return tuple(r.role for r in self.roles.values() if r.stack == stack), f"every container of stack {stack}"
        if spec == "hosts":
            return tuple(f"host:{h}" for h in self.hosts), "the hosts themselves"
        if spec.startswith("host-of:"):
            inner, _ = self.expand(spec.split(":", 1)[1])
            found = tuple(dict.fromkeys(f"host:{self.roles[r].engine}" for r in inner if r in self.roles))
            return found, f"the host of {spec.split(':', 1)[1]} when the test runs"
        if spec in self.roles:
            return (spec,), ""
        raise TopologyError(f"unknown fault target {spec!r}")

    def summary(self) -> dict[str, Any]:
        """What a report may show: names, engines, selectors, addresses; never a credential's value."""
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "faults": "allowed" if self.faults_allowed else "forbidden",
            "engines": {n: e.url for n, e in self.engines.items()},
            "containers": {r.role: f"{r.selector.describe()} @ {r.engine}" for r in self.roles.values()},
            "patroni": {m.name: {"api": m.api, "postgres": str(m.postgres)} for m in self.patroni},
            "etcd": {m.name: m.client_url for m in self.etcd},
            "endpoints": {**{k: str(v) for k, v in self.endpoints.items()}, **self.urls},
            "hosts": {h.name: h.container for h in self.hosts.values()},
            "logins": {k: f"{v.user} (password: {v.password.describe()})" for k, v in self.logins.items()},
        }


# ------------------------------------------------------------------------------------------------- embedded
def embedded() -> Inventory:
    """The copy of DPG this project builds and runs (compose/ + DPG_PORT_*), as an inventory."""
    from .stacks import ORDER, STACKS, port

    loop = "127.0.0.1"
    roles = {
        svc: Role(svc, Selector(name=EMBEDDED_PREFIX + svc), LOCAL_ENGINE, st.name)
        for name in ORDER
        for st in [STACKS[name]]
        for svc in st.services
    }
    hp = {
        "haproxy_rw": "DPG_PORT_HAPROXY_RW",
        "haproxy_ro": "DPG_PORT_HAPROXY_RO",
        "traefik_rw": "DPG_PORT_TRAEFIK_RW",
        "traefik_ro": "DPG_PORT_TRAEFIK_RO",
        "traefik_citus": "DPG_PORT_TRAEFIK_CITUS",
        "pgbouncer": "DPG_PORT_PGBOUNCER",
        "vector": "DPG_PORT_VECTOR",
        "citus_coordinator": "DPG_PORT_CITUS_COORDINATOR",
        "redis": "DPG_PORT_REDIS",
    }
    urls = {
        "haproxy_stats": f"http://{loop}:{port('DPG_PORT_HAPROXY_STATS')}/;csv",
        "traefik_api": f"http://{loop}:{port('DPG_PORT_TRAEFIK_API')}",
        "prometheus": f"http://{loop}:{port('DPG_PORT_PROMETHEUS')}",
        "toxiproxy": os.environ.get("DPG_TOXIPROXY_API") or f"http://{loop}:{port('DPG_PORT_TOXIPROXY')}",
        "grafana": f"http://{loop}:{port('DPG_PORT_GRAFANA')}",
    }
    return Inventory(
        name="embedded",
        kind="embedded",
        source="built in (compose/, topology/stacks.py)",
        faults_allowed=True,
        remote_allowed=False,
        engines={LOCAL_ENGINE: EngineSpec(LOCAL_ENGINE, os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))},
        roles=roles,
        patroni=tuple(
            PatroniMember(
                n,
                f"http://{loop}:{port(f'DPG_PORT_PATRONI_{i}_API')}",
                HostPort(loop, port(f"DPG_PORT_PATRONI_{i}")),
            )
            for i, n in enumerate(EMBEDDED_PATRONI, 1)
        ),
        etcd=tuple(
            EtcdMember(n, f"http://{loop}:{port(f'DPG_PORT_ETCD_{i}')}") for i, n in enumerate(EMBEDDED_ETCD, 1)
        ),
        endpoints={k: HostPort(loop, port(env)) for k, env in hp.items()},
        urls=urls,
        citus_workers=(
            HostPort(loop, port("DPG_PORT_CITUS_WORKER_1")),
            HostPort(loop, port("DPG_PORT_CITUS_WORKER_2")),
        ),
        logins={
            "app": Login("dpg_cluster", Secret(env="DPG_DB_PASSWORD", default="dpg_cluster_pw")),
            "readonly": Login("readonly_user", Secret(env="DPG_RO_PASSWORD", default="readonly_pw")),
            "superuser": Login("postgres", Secret(env="DPG_SUPERUSER_PASSWORD", default="postgres_pw")),
        },
        network=os.environ.get("DPG_NETWORK", "dpg-unified-network"),
    )


# ------------------------------------------------------------------------------------------------- loading
@functools.cache
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _schema_problems(data: Any) -> list[str]:
    problems = []
    for err in sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path)):
        where = _where(err.absolute_path)
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            problems.append(f"{where}: unknown key(s) {', '.join(map(repr, extra))}")
        elif err.validator == "required":
            problems.append(f"{where}: {err.message.replace(' is a required property', '')} is missing")
        elif err.validator == "oneOf" and err.schema.get("description", "").startswith("a container"):
            problems.append(
                f"{where}: a container is a name, or exactly one of {{name, regex, label}}: {err.instance!r}"
            )
        elif err.validator == "oneOf" and "reference" in err.schema.get("description", ""):
            problems.append(
                f"{where}: a password is given by reference only, as {{env: VAR}} or {{file: PATH}}, never inline"
            )
        elif err.validator == "pattern" and err.schema.get("description") == "host:port":
            problems.append(f"{where}: {err.instance!r} is not host:port")
        elif err.validator == "pattern":
            rule = err.schema.get("description", err.schema["pattern"])
            problems.append(f"{where}: {err.instance!r} is not valid here ({rule})")
        else:
            problems.append(f"{where}: {err.message}")
    return problems


def _hostport(raw: str) -> HostPort:
    host, _, port = raw.rpartition(":")
    return HostPort(host, int(port))


def _selector(raw: Any) -> Selector:
    return Selector(name=raw) if isinstance(raw, str) else Selector(**raw)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _semantic_problems(data: dict) -> list[str]:
    """Mistakes the schema cannot see: unknown engines, bad regexes, ports out of range, remote addresses,
    duplicates, credentials whose source is missing."""
    problems = []
    engines = set((data.get("engines") or {LOCAL_ENGINE: None}).keys())
    remote_ok = data.get("remote_addresses") == "allowed"
    containers: dict[str, str] = {}

    def check_host(where: str, host: str) -> None:
        if not remote_ok and not _is_loopback(host):
            problems.append(
                f"{where}: {host} is not a loopback address; a remote deployment needs `remote_addresses: allowed`"
            )

    def check_container(where: str, spec: dict) -> None:
        engine = spec.get("engine", LOCAL_ENGINE)
        if engine not in engines:
            problems.append(f"{where}.engine: {engine!r} is not one of the engines ({', '.join(sorted(engines))})")
        sel = spec.get("container")
        if isinstance(sel, dict) and "regex" in sel:
            try:
                re.compile(sel["regex"])
            except re.error as exc:
                problems.append(f"{where}.container.regex: {sel['regex']!r} is not a regular expression ({exc})")
        key = f"{engine}/{json.dumps(sel, sort_keys=True)}"
        if key in containers:
            problems.append(f"{where}.container: the same container as {containers[key]}")
        containers[key] = where

    for name, eng in (data.get("engines") or {}).items():
        url = urlsplit(eng["url"])
        if url.scheme in ("tcp", "ssh"):
            if not url.hostname:
                problems.append(f"engines.{name}.url: {eng['url']!r} names no host")
            else:
                check_host(f"engines.{name}.url", url.hostname)
        for key in ("ca_cert", "client_cert", "client_key"):
            path = (eng.get("tls") or {}).get(key)
            if path and not Path(path).expanduser().is_file():
                problems.append(f"engines.{name}.tls.{key}: no file {path}")
    for section in ("patroni", "etcd"):
        for name, spec in ((data.get(section) or {}).get("members") or {}).items():
            check_container(f"{section}.members.{name}", spec)
            for key in ("api", "client_url"):
                if key in spec:
                    check_host(f"{section}.members.{name}.{key}", urlsplit(spec[key]).hostname or "")
            if "postgres" in spec:
                check_host(f"{section}.members.{name}.postgres", spec["postgres"].rpartition(":")[0])
    for role, spec in (data.get("services") or {}).items():
        check_container(f"services.{role}", spec)
    patroni_names = set((data.get("patroni") or {}).get("members") or {})
    etcd_names = set((data.get("etcd") or {}).get("members") or {})
    services = set(data.get("services") or {})
    for clash in sorted((patroni_names & etcd_names) | ((patroni_names | etcd_names) & services)):
        problems.append(f"role {clash!r} is named twice (Patroni/etcd members and services share one namespace)")
    for key, value in (data.get("endpoints") or {}).items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if not isinstance(v, str):
                continue
            host = urlsplit(v).hostname if "://" in v else v.rpartition(":")[0]
            port = urlsplit(v).port if "://" in v else int(v.rpartition(":")[2] or 0)
            if port is not None and not 0 < port < 65536:
                problems.append(f"endpoints.{key}: port {port} out of range")
            check_host(f"endpoints.{key}", host or "")
    for login, spec in (data.get("database") or {}).items():
        ref = (spec.get("password") or {}) if isinstance(spec, dict) else {}
        if "env" in ref and ref["env"] not in os.environ:
            problems.append(f"database.{login}.password: environment variable {ref['env']} is not set")
        if "file" in ref and not Path(ref["file"]).expanduser().is_file():
            problems.append(f"database.{login}.password: no file {ref['file']}")
    return problems


def parse(data: Any, *, source: str) -> Inventory:
    """A validated Inventory from parsed YAML; every mistake is one line of one TopologyError."""
    if not isinstance(data, dict):
        raise TopologyError(f"inventory {source}: expected a mapping at the top level, got {type(data).__name__}")
    problems = _schema_problems(data)
    if not problems:
        problems = _semantic_problems(data)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise TopologyError(f"inventory {source}: {len(problems)} problem(s):\n{lines}")
    engines = {n: EngineSpec(n, e["url"], e.get("tls")) for n, e in (data.get("engines") or {}).items()}
    engines = engines or {LOCAL_ENGINE: EngineSpec(LOCAL_ENGINE, "unix:///var/run/docker.sock")}
    roles: dict[str, Role] = {}
    for section, stack in (("patroni", "patroni"), ("etcd", "patroni")):
        for name, spec in data[section]["members"].items():
            roles[name] = Role(name, _selector(spec["container"]), spec.get("engine", LOCAL_ENGINE), stack)
    for role, spec in (data.get("services") or {}).items():
        roles[role] = Role(role, _selector(spec["container"]), spec.get("engine", LOCAL_ENGINE), _stack_of(role))
    eps = data["endpoints"]
    url_keys = {"haproxy_stats", "traefik_api", "prometheus", "toxiproxy", "grafana"}
    db = data.get("database") or {}
    logins = {
        k: Login(v["user"], Secret(env=v["password"].get("env"), file=v["password"].get("file")))
        for k, v in db.items()
        if k in ("app", "readonly", "superuser")
    }
    return Inventory(
        name=data["name"],
        kind="multihost" if data.get("managed_by") == "dpg-chaos-multihost" else "target",
        source=source,
        faults_allowed=data.get("faults") == "allowed",
        remote_allowed=data.get("remote_addresses") == "allowed",
        engines=engines,
        roles=roles,
        patroni=tuple(
            PatroniMember(n, s["api"].rstrip("/"), _hostport(s["postgres"]))
            for n, s in data["patroni"]["members"].items()
        ),
        etcd=tuple(EtcdMember(n, s["client_url"].rstrip("/")) for n, s in data["etcd"]["members"].items()),
        endpoints={k: _hostport(v) for k, v in eps.items() if k not in url_keys and k != "citus_workers"},
        urls={k: v.rstrip("/") if k != "haproxy_stats" else v for k, v in eps.items() if k in url_keys},
        citus_workers=tuple(_hostport(v) for v in eps.get("citus_workers") or ()),
        database=db.get("name", "distributed_postgres_cluster"),
        logins=logins,
        network=data.get("network"),
        patroni_scope=data["patroni"].get("scope", "dpg"),
        patroni_namespace=data["patroni"].get("namespace", "/service").rstrip("/") or "/service",
        hosts={h: HostNode(h, spec["container"], spec.get("address")) for h, spec in (data.get("hosts") or {}).items()},
    )


def _stack_of(role: str) -> str:
    from .stacks import STACKS

    for st in STACKS.values():
        if role in st.services:
            return st.name
    return role.split("-")[0]


def load(path: str | Path) -> Inventory:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise TopologyError(f"inventory {path}: cannot read it ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise TopologyError(f"inventory {path}: not YAML{at}: {getattr(exc, 'problem', exc)}") from None
    return parse(data, source=str(p))


# ------------------------------------------------------------------------------------------------- current
_lock = threading.RLock()
_current: Inventory | None = None


def current() -> Inventory:
    """The deployment under test: DPG_TARGET's file, else the embedded topology (loaded once per process)."""
    global _current
    with _lock:
        if _current is None:
            target = os.environ.get("DPG_TARGET", "").strip()
            _current = load(target) if target else embedded()
        return _current


def reset() -> None:
    """Forget the loaded inventory (the next `current()` reads DPG_TARGET again): for the start-up code that picks
    the target, should anything have asked before it decided."""
    global _current
    with _lock:
        _current = None


@contextmanager
def using(inv: Inventory) -> Iterator[Inventory]:
    """Make `inv` the current inventory for a block (unit tests, tools that inspect another deployment)."""
    global _current
    with _lock:
        before, _current = _current, inv
    try:
        yield inv
    finally:
        with _lock:
            _current = before


# ------------------------------------------------------------------------------------------------- engines
class Engines:
    """Docker clients per engine of one inventory, and each role resolved to its container."""

    def __init__(self, inv: Inventory):
        self.inv = inv
        self._clients: dict[str, DockerClient] = {}
        self._ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def client(self, engine: str = LOCAL_ENGINE) -> DockerClient:
        import docker

        with self._lock:
            if engine not in self._clients:
                spec = self.inv.engines.get(engine)
                if spec is None:
                    raise TopologyError(f"inventory {self.inv.name}: no engine {engine!r}")
                try:
                    if engine == LOCAL_ENGINE and not self.inv.is_target:
                        client = docker.from_env(timeout=120)
                    else:
                        tls = None
                        if spec.tls:
                            tls = docker.tls.TLSConfig(
                                client_cert=(spec.tls["client_cert"], spec.tls["client_key"]),
                                ca_cert=spec.tls["ca_cert"],
                                verify=spec.tls.get("verify", True),
                            )
                        client = docker.DockerClient(
                            base_url=spec.url, tls=tls, timeout=120, use_ssh_client=spec.url.startswith("ssh://")
                        )
                    client.ping()
                except Exception as exc:  # any failure means the same to the user
                    raise TopologyError(
                        f"Docker engine {spec.describe()} is not reachable ({type(exc).__name__}): is it running?"
                    ) from None
                self._clients[engine] = client
            return self._clients[engine]

    def container(self, role: str) -> Container:
        """The container playing `role`, fresh from its engine (resolved once by selector, then by id)."""
        from docker.errors import NotFound

        r = self.inv.role(role)
        client = self.client(r.engine)
        cid = self._ids.get(role)
        if cid:
            try:
                return client.containers.get(cid)
            except NotFound:
                self._ids.pop(role, None)  # re-created since (a repair, a DR drill): resolve again
        c = self._find(client, r)
        self._ids[role] = c.id
        return c

    def _find(self, client: DockerClient, r: Role) -> Container:
        from docker.errors import NotFound

        sel = r.selector
        if sel.name:
            try:
                return client.containers.get(sel.name)
            except NotFound:
                raise TopologyError(f"role {r.role}: no container {sel.name!r} on engine {r.engine}") from None
        if sel.label:
            found = client.containers.list(all=True, filters={"label": sel.label})
        else:
            pattern = re.compile(sel.regex or "")
            found = [c for c in client.containers.list(all=True) if pattern.search(c.name)]
        if len(found) != 1:
            names = ", ".join(sorted(c.name for c in found)) or "none"
            raise TopologyError(
                f"role {r.role}: selector {sel.describe()} on engine {r.engine} matches {len(found)} containers "
                f"({names}); it must match exactly one"
            )
        return found[0]

    def name(self, role: str) -> str:
        r = self.inv.role(role)
        return r.selector.name or self.container(role).name

    def role_of(self, name: str) -> str | None:
        """The role whose container has this name (None: not a container of the inventory)."""
        for r in self.inv.roles.values():
            if r.selector.name == name:
                return r.role
        for r in self.inv.roles.values():
            if not r.selector.name:
                try:
                    if self.name(r.role) == name:
                        return r.role
                except TopologyError:
                    continue
        return None


_engines: Engines | None = None


def engines() -> Engines:
    """The Engines of the current inventory (one set of clients per process and inventory)."""
    global _engines
    with _lock:
        inv = current()
        if _engines is None or _engines.inv is not inv:
            _engines = Engines(inv)
        return _engines
