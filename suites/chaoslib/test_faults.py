"""Every fault injects on enter and ALWAYS heals on exit — proven on throwaway containers.

The testbed is ours alone: `dpg-testbed-*` containers from `dpg/chaos-testbed:latest` (dpg/base:trixie
+ iptables/iproute2/procps/ping) on the bridge network `dpg-testbed-net`. The real topology is never
touched: the reaper is always run with `--prefix dpg-testbed-`, and Patroni/toxiproxy faults are
exercised against small in-process fake APIs on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

docker = pytest.importorskip("docker")
from docker.errors import APIError, DockerException, ImageNotFound, NotFound  # noqa: E402
from docker.types import IPAMConfig, IPAMPool  # noqa: E402

from chaos.faults import (  # noqa: E402
    FAULT_KINDS,
    RULE_TAG,
    Disconnected,
    FaultError,
    Isolated,
    Killed,
    MaintenanceMode,
    Partitioned,
    PatroniAPI,
    Paused,
    ProcessKilled,
    ProxyDisabled,
    ServiceReloaded,
    ServiceRestarted,
    Stopped,
    Switchover,
    Toxic,
    heal,
    heal_all,
    registry,
    rules,
)
from topology.names import IMAGE_LABEL, MANAGED_LABEL, RECIPE_LABEL  # noqa: E402

#: every kind, on testbed containers this module creates (and fake APIs on 127.0.0.1): nothing of the deployment
pytestmark = [
    pytest.mark.destructive,
    pytest.mark.faults(
        *(f"{kind.__name__}@testbed" for kind in FAULT_KINDS),
        "Switchover@patroni-api",
        "MaintenanceMode@patroni-api",
        "DynamicConfigChanged@patroni-api",
        "Toxic@toxiproxy-api",
        "ProxyDisabled@toxiproxy-api",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "dpg/base:trixie"
TESTBED_IMAGE = "dpg/chaos-testbed:latest"
TESTBED_NET = "dpg-testbed-net"
PREFIX = "dpg-testbed-"
DOCKERFILE = f"""FROM {BASE_IMAGE}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends iptables iproute2 procps iputils-ping \\
 && rm -rf /var/lib/apt/lists/*
"""
LABELS = {MANAGED_LABEL: "true"}


def _docker_or_skip():
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except DockerException as e:
        pytest.skip(f"Docker is not reachable, fault tests need it: {e}", allow_module_level=True)
    try:
        client.images.get(BASE_IMAGE)
    except ImageNotFound:
        pytest.skip(f"local image {BASE_IMAGE} is missing (nothing can be pulled)", allow_module_level=True)
    return client


CLIENT = _docker_or_skip()


# ---------------------------------------------------------------------------------------- helpers


def sh(c, *argv: str) -> tuple[int, str]:
    r = c.exec_run(list(argv), user="root")
    return r.exit_code, (r.output or b"").decode("utf-8", "replace")


def read(c, *argv: str, complete=bool) -> tuple[int, str]:
    """`sh` for reads: Docker now and then loses a short exec's output (exit 0, b""); re-read."""
    for _ in range(10):
        rc, out = sh(c, *argv)
        if rc != 0 or complete(out):
            return rc, out
        time.sleep(0.05)
    raise AssertionError(f"no plausible output from {argv} in {c.name} after 10 tries")


def ip_of(c) -> str:
    c.reload()
    return c.attrs["NetworkSettings"]["Networks"][TESTBED_NET]["IPAddress"]


def can_ping(src, dst_ip: str) -> bool:
    return sh(src, "ping", "-c", "1", "-W", "1", dst_ip)[0] == 0


def tcp_outcome(src, dst_ip: str, port: int) -> str:
    """'refused' (RST came back: reachable, nobody listens) or 'dropped' (no answer within 2s)."""
    rc, _ = sh(src, "timeout", "2", "bash", "-c", f"echo > /dev/tcp/{dst_ip}/{port}")
    return "dropped" if rc == 124 else ("open" if rc == 0 else "refused")


def tagged_rules(c) -> list[str]:
    rc, out = read(c, "iptables", "-w", "5", "-S", complete=lambda out: "-P INPUT" in out)
    assert rc == 0, out
    return [line for line in out.splitlines() if RULE_TAG in line]


def status(c) -> str:
    c.reload()
    return c.status


class FakeHistory:
    def __init__(self) -> None:
        self.marks: list[tuple[str, str, str]] = []

    def mark(self, action: str, target: str, detail: str = "") -> None:
        self.marks.append((action, target, detail))

    def actions(self) -> list[str]:
        return [a for a, _, _ in self.marks]


# ---------------------------------------------------------------------------------------- fixtures


def _our_containers() -> list:
    found = CLIENT.containers.list(
        all=True, ignore_removed=True, filters={"label": f"{MANAGED_LABEL}=true", "name": PREFIX}
    )
    return [c for c in found if c.name.startswith(PREFIX)]


def _remove_stale() -> None:
    """Leftovers of an earlier, killed run of this module (only our own dpg-testbed-* objects)."""
    for c in _our_containers():
        c.remove(force=True)
    for n in CLIENT.networks.list(names=[TESTBED_NET]):
        if n.name == TESTBED_NET and (n.attrs.get("Labels") or {}).get(MANAGED_LABEL) == "true":
            n.remove()


@pytest.fixture(scope="session")
def testbed_image() -> str:
    """Build dpg/chaos-testbed once; the recipe label (Dockerfile + base image id) skips rebuilds."""
    base_id = CLIENT.images.get(BASE_IMAGE).id
    recipe = hashlib.sha256((DOCKERFILE + base_id + IMAGE_LABEL).encode()).hexdigest()  # v2: no ownership label
    old = None
    try:
        old = CLIENT.images.get(TESTBED_IMAGE)
        if old.labels.get(RECIPE_LABEL) == recipe:
            return TESTBED_IMAGE
    except ImageNotFound:
        pass
    try:
        new, _ = CLIENT.images.build(
            fileobj=io.BytesIO(DOCKERFILE.encode()),
            tag=TESTBED_IMAGE,
            pull=False,
            rm=True,
            forcerm=True,
            labels={IMAGE_LABEL: "chaos-testbed", RECIPE_LABEL: recipe},  # an image never makes a container ours
        )
    except docker.errors.BuildError as e:
        tail = "".join(str(x.get("stream", x.get("error", ""))) for x in list(e.build_log)[-15:])
        pytest.fail(f"could not build {TESTBED_IMAGE}: {e}\n{tail}")
    if old is not None and old.id != new.id:  # our previous build, now untagged
        with suppress(APIError):
            CLIENT.images.remove(old.id)
    return TESTBED_IMAGE


@pytest.fixture(scope="module")
def testnet():
    _remove_stale()
    net = None
    for third in range(200, 255):  # a /24 of our own so a fixed IP can be asked back on reconnect
        try:
            net = CLIENT.networks.create(
                TESTBED_NET,
                driver="bridge",
                labels=LABELS,
                ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=f"172.29.{third}.0/24")]),
            )
            break
        except APIError as e:
            if "overlap" not in str(e).lower():
                raise
    assert net is not None, "no free /24 in 172.29.200-254.0 for the testbed network"
    try:
        yield net
    finally:
        for c in _our_containers():
            c.remove(force=True)
        net.remove()


@pytest.fixture(scope="module")
def bed(testbed_image, testnet):
    """Three long-lived testbed containers a, b, c (`sleep infinity` under docker-init)."""
    made = {}
    for x in ("a", "b", "c"):
        made[x] = CLIENT.containers.run(
            testbed_image,
            ["sleep", "infinity"],
            name=f"{PREFIX}{x}",
            detach=True,
            init=True,
            cap_add=["NET_ADMIN"],
            labels=LABELS,
            environment={"PIDDIR": "/run/victim"},
            network=TESTBED_NET,
            networking_config={TESTBED_NET: CLIENT.api.create_endpoint_config(aliases=[f"tb-{x}"])},
        )
    yield made
    for c in made.values():
        with suppress(NotFound):
            c.remove(force=True)


@pytest.fixture(autouse=True)
def nothing_left_active(request):
    """Like the suite-wide heal fixture: after each test no fault may still be registered."""
    yield
    leaked = [f.describe() for f in registry.active()]
    heal_all(reason="test teardown", raise_errors=False)
    if "bed" in request.fixturenames:  # a failed test must not poison the next one
        heal.reap_leftovers(CLIENT, name_prefix=PREFIX)
        for c in request.getfixturevalue("bed").values():
            if status(c) in ("exited", "created"):
                c.start()
    assert not leaked, f"faults still active after the test: {leaked}"


# ------------------------------------------------------------------------------------- containers


def test_killed_container_is_started_again_on_exit(bed):
    a = bed["a"]
    h = FakeHistory()
    with Killed(a, history=h) as f:
        assert status(a) == "exited"
        assert f in registry.active()
    assert status(a) == "running"
    assert h.actions() == ["inject", "heal"]
    assert h.marks[0][1] == a.name and "SIGKILL" in h.marks[0][2]


def test_killed_heals_even_when_the_body_raises(bed):
    a = bed["a"]
    with pytest.raises(RuntimeError, match="boom"):
        with Killed(a.name):
            raise RuntimeError("boom")
    assert status(a) == "running"


def test_killed_without_restart_leaves_it_down_on_purpose(bed):
    a = bed["a"]
    with Killed(a, restart=False):
        pass
    assert status(a) == "exited"
    a.start()


def test_stopped_gracefully_then_started(bed):
    a = bed["a"]
    with Stopped(a, timeout=5):
        assert status(a) == "exited"
    assert status(a) == "running"


def test_paused_then_unpaused_even_when_the_body_raises(bed):
    b = bed["b"]
    with pytest.raises(ValueError):
        with Paused(b):
            assert status(b) == "paused"
            raise ValueError("body failed")
    assert status(b) == "running"


def test_a_pause_healed_at_once_still_unpauses(bed):
    """runc can refuse an unpause that follows a pause too closely ("cannot resume a running
    process"); the heal retries until the freezer has settled."""
    a = bed["a"]
    for _ in range(10):
        with Paused(a):
            pass
        assert status(a) == "running"


def test_heal_is_idempotent_and_safe_when_nothing_is_broken(bed):
    a, b = bed["a"], bed["b"]
    p, i = Paused(a), Isolated(a, from_=[b])
    for f in (p, i):
        f.heal()  # never injected
        with f:
            pass
        f.heal()
        f.heal()
    assert status(a) == "running" and not tagged_rules(a)


def test_a_fault_that_fails_half_way_is_healed_before_the_error_propagates(bed):
    a = bed["a"]

    class HalfPause(Paused):
        def inject(self) -> None:
            super().inject()
            raise FaultError("second step failed")

    with pytest.raises(FaultError, match="second step"):
        with HalfPause(a):
            pytest.fail("the body must not run")
    assert status(a) == "running"
    assert not registry.active()


def test_unknown_target_is_a_clear_error(bed):
    with pytest.raises(FaultError, match="no container named"):
        with Paused("dpg-testbed-does-not-exist"):
            pass


def test_service_restarted_and_reloaded_leave_it_running(bed):
    a = bed["a"]
    a.reload()
    started = a.attrs["State"]["StartedAt"]
    with ServiceRestarted(a, timeout=2):
        pass
    a.reload()
    assert a.status == "running" and a.attrs["State"]["StartedAt"] != started
    # docker-init drops signals until it has spawned its child: wait for `sleep` first
    deadline = time.monotonic() + 10
    while sh(a, "pgrep", "-x", "sleep")[0] != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    # `sleep` has no SIGHUP handler: the reload kills it, the heal brings the container back
    with ServiceReloaded(a, signal="SIGHUP") as f:
        pass
    assert status(a) == "running", f.events
    assert f._healed == "started", f.events


# ---------------------------------------------------------------------------------------- process


def _spawn_victim(c, comm: str = "victimproc") -> int:
    """A long-running `comm` process (a copy of sleep) whose pid is written to $PIDDIR/victim.pid."""
    rc, out = sh(
        c,
        "sh",
        "-c",
        f'mkdir -p "$PIDDIR" && cp /bin/sleep /tmp/{comm} && '
        f'(/tmp/{comm} 1000 >/dev/null 2>&1 & echo $! > "$PIDDIR/victim.pid")',
    )
    assert rc == 0, out
    return int(read(c, "sh", "-c", 'cat "$PIDDIR/victim.pid"')[1])


def _alive(c, pid: int) -> bool:
    rc, out = read(c, "ps", "-o", "stat=", "-p", str(pid))
    return rc == 0 and not out.strip().startswith("Z")


def test_process_killed_by_pid_file_resolves_env_in_the_container(bed):
    a = bed["a"]
    pid = _spawn_victim(a)
    h = FakeHistory()
    with ProcessKilled(a, pidfile="$PIDDIR/victim.pid", history=h) as f:
        assert f.pid == pid
        assert not _alive(a, pid)
    assert status(a) == "running"  # only the process died, not the container
    assert h.actions() == ["inject", "heal"] and f"pid {pid}" in h.marks[1][2]


def test_process_killed_by_name(bed):
    a = bed["a"]
    pid = _spawn_victim(a, comm="victim2")
    with ProcessKilled(a, name="victim2", signal="TERM") as f:
        assert f.pid == pid
        time.sleep(0.2)
        assert not _alive(a, pid)


def test_process_killed_refuses_missing_targets(bed):
    with pytest.raises(FaultError, match="cannot read pid file"):
        with ProcessKilled(bed["a"], pidfile="$PIDDIR/nope.pid"):
            pass
    with pytest.raises(FaultError, match="no process named"):
        with ProcessKilled(bed["a"], name="nosuchproc"):
            pass
    with pytest.raises(ValueError):
        ProcessKilled(bed["a"], pidfile="/tmp/x; rm -rf /")


# ---------------------------------------------------------------------------------------- network


def test_isolated_cuts_both_directions_and_heals_exactly_its_rules(bed):
    a, b, c = bed["a"], bed["b"], bed["c"]
    ia, ib, ic = ip_of(a), ip_of(b), ip_of(c)
    assert can_ping(a, ib) and can_ping(b, ia)
    with Isolated(a, from_=[b]) as f:
        assert not can_ping(a, ib) and not can_ping(b, ia)
        assert can_ping(a, ic) and can_ping(c, ia)  # only the named peer
        rules = tagged_rules(a)
        assert len(rules) == 2 and all(f.tag in r for r in rules)
    assert tagged_rules(a) == []
    assert can_ping(a, ib) and can_ping(b, ia)


def test_isolated_on_ports_only_drops_those_ports(bed):
    a, b = bed["a"], bed["b"]
    ib = ip_of(b)
    assert tcp_outcome(a, ib, 7777) == "refused"
    with Isolated(a, from_=[ib], ports=[7777]):
        assert tcp_outcome(a, ib, 7777) == "dropped"
        assert tcp_outcome(a, ib, 7778) == "refused"
        assert can_ping(a, ib)
    assert tcp_outcome(a, ib, 7777) == "refused"
    assert tagged_rules(a) == []


def test_partitioned_groups_cannot_talk_across(bed):
    a, b, c = bed["a"], bed["b"], bed["c"]
    ia, ib, ic = ip_of(a), ip_of(b), ip_of(c)
    with Partitioned([[a], [b, c]]):
        assert not can_ping(a, ib) and not can_ping(a, ic) and not can_ping(c, ia)
        assert can_ping(b, ic) and can_ping(c, ib)  # same side
    assert can_ping(a, ib) and can_ping(a, ic) and can_ping(c, ia)
    assert all(tagged_rules(x) == [] for x in (a, b, c))


def test_disconnected_reconnects_with_the_same_ip_and_aliases(bed):
    c = bed["c"]
    before = ip_of(c)
    with Disconnected(c, network=TESTBED_NET):
        c.reload()
        assert TESTBED_NET not in c.attrs["NetworkSettings"]["Networks"]
        assert not can_ping(bed["a"], before)
    c.reload()
    ep = c.attrs["NetworkSettings"]["Networks"][TESTBED_NET]
    assert ep["IPAddress"] == before
    assert "tb-c" in (ep.get("Aliases") or [])
    assert can_ping(bed["a"], before)


# --------------------------------------------------------------------------------------- registry


def test_heal_all_heals_every_active_fault(bed):
    a, b = bed["a"], bed["b"]
    p, i = Paused(b), Isolated(a, from_=[b])
    i.__enter__()
    p.__enter__()
    assert registry.active() == [i, p]
    healed = heal_all()
    assert healed == [p.describe(), i.describe()]  # newest first
    assert registry.active() == []
    assert status(b) == "running" and tagged_rules(a) == []
    p.__exit__(None, None, None)  # the normal exit later is a harmless no-op
    i.__exit__(None, None, None)


class LossyIptables:
    """A stand-in container whose exec loses the output of every other `iptables -S`, like Docker
    does now and then for short execs."""

    name = "lossy"

    def __init__(self) -> None:
        self.rules = [
            '-A INPUT -s 10.0.0.2/32 -m comment --comment "dpg-chaos:isolated-1" -j DROP',
            '-A OUTPUT -d 10.0.0.2/32 -m comment --comment "dpg-chaos:isolated-1" -j DROP',
            '-A INPUT -s 10.0.0.9/32 -m comment --comment "someone-else" -j DROP',
        ]
        self.listings = 0

    def exec_run(self, cmd, **_):
        args = cmd[3:]  # drop "iptables -w 5"
        if args == ["-S"]:
            self.listings += 1
            out = "" if self.listings % 2 else "\n".join(["-P INPUT ACCEPT", *self.rules])
            return SimpleNamespace(exit_code=0, output=out.encode())
        assert args[0] == "-D"
        line = shlex.join(["-A", *args[1:]])
        match = [r for r in self.rules if shlex.split(r) == shlex.split(line)]
        if not match:
            return SimpleNamespace(exit_code=1, output=b"Bad rule (does a matching rule exist in that chain?)")
        self.rules.remove(match[0])
        return SimpleNamespace(exit_code=0, output=b"")


def test_rule_removal_survives_lost_exec_output():
    c = LossyIptables()
    removed = rules.delete_tagged_rules(c, "dpg-chaos:isolated-1")
    assert len(removed) == 2
    assert c.rules == ['-A INPUT -s 10.0.0.9/32 -m comment --comment "someone-else" -j DROP']


def _chaos_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chaos", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_cli_heal_reaps_what_a_killed_run_left_behind(bed):
    a, b = bed["a"], bed["b"]
    rc, out = sh(
        a,
        "iptables",
        "-w",
        "5",
        "-I",
        "INPUT",
        "-s",
        ip_of(b),
        "-m",
        "comment",
        "--comment",
        "dpg-chaos:leftover-123",
        "-j",
        "DROP",
    )
    assert rc == 0, out
    sh(a, "iptables", "-w", "5", "-I", "INPUT", "-s", "192.0.2.1", "-j", "DROP")  # not ours: stays
    b.pause()
    dry = _chaos_cli("heal", "--prefix", PREFIX, "--dry-run")
    assert dry.returncode == 0 and f"would unpause container {b.name}" in dry.stdout, dry.stderr
    assert status(b) == "paused" and len(tagged_rules(a)) == 1
    r = _chaos_cli("heal", "--prefix", PREFIX)
    assert r.returncode == 0, r.stderr
    assert f"unpaused container {b.name}" in r.stdout
    assert f"deleted iptables rule in {a.name}" in r.stdout and "leftover-123" in r.stdout
    assert status(b) == "running" and tagged_rules(a) == []
    assert "192.0.2.1" in read(a, "iptables", "-S", complete=lambda out: "-P INPUT" in out)[1]
    sh(a, "iptables", "-w", "5", "-D", "INPUT", "-s", "192.0.2.1", "-j", "DROP")
    again = _chaos_cli("heal", "--prefix", PREFIX)
    assert again.returncode == 0 and again.stdout.strip() == "nothing to heal"


def test_cli_list_and_docker_down():
    r = _chaos_cli("list")
    assert r.returncode == 0 and "Isolated" in r.stdout and "Paused" in r.stdout
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    r = subprocess.run(
        [sys.executable, "-m", "chaos", "heal"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env
    )
    assert r.returncode == 2 and "Docker is not reachable" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_fault_heals_before_the_process_ends(bed, sig):
    a, b = bed["a"], bed["b"]
    victim = Path(__file__).with_name("_interrupt_victim.py")
    proc = subprocess.Popen(
        [sys.executable, str(victim), a.name, b.name],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, deadline = "", time.monotonic() + 30
        while "READY" not in ready and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 0.5)[0]:
                ready += proc.stdout.readline()
            if proc.poll() is not None:
                break
        assert "READY" in ready, f"victim never got ready: {proc.stderr.read() if proc.poll() is not None else ''}"
        assert status(b) == "paused" and len(tagged_rules(a)) == 2
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -sig, err  # it still died of the signal, as it would have
    assert status(b) == "running", err
    assert tagged_rules(a) == [], err
    assert "heal" in err


# ------------------------------------------------------------------ Patroni and toxiproxy (fake APIs)


@contextmanager
def fake_api(route):
    """A tiny HTTP server on 127.0.0.1: `route(method, path, body) -> (status, json_or_None)`."""

    class Handler(BaseHTTPRequestHandler):
        def _do(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"null") if n else None
            code, payload = route(self.command, self.path, body)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _do

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


class FakePatroni:
    def __init__(self) -> None:
        self.leader, self.paused, self.calls = "patroni-1", False, []

    def __call__(self, method, path, body):
        self.calls.append((method, path, body))
        if (method, path) == ("GET", "/cluster"):
            members = [
                {"name": n, "role": "leader" if n == self.leader else "replica"}
                for n in ("patroni-1", "patroni-2", "patroni-3")
            ]
            return 200, {"members": members, **({"pause": True} if self.paused else {})}
        if (method, path) == ("PATCH", "/config"):
            self.paused = bool(body.get("pause"))
            return 200, {"pause": True} if self.paused else {}
        if (method, path) == ("POST", "/switchover"):
            if body.get("leader") != self.leader:
                return 412, "leader name does not match"
            if sum(1 for c in self.calls if c[1] == "/switchover") == 1:
                return 503, "Switchover failed"  # first try loses a race
            self.leader = body.get("candidate") or "patroni-2"
            return 200, f"Successfully switched over to {self.leader}"
        return 404, None


def test_maintenance_mode_pauses_and_always_resumes():
    fake = FakePatroni()
    with fake_api(fake) as url:
        api = PatroniAPI(["http://127.0.0.1:9", url], timeout=1)  # first URL refuses: falls through
        with pytest.raises(KeyError):
            with MaintenanceMode(api):
                assert api.is_paused()
                raise KeyError("body")
        assert not api.is_paused()
        assert ("PATCH", "/config", {"pause": None}) in fake.calls


def test_switchover_retries_a_lost_race_and_records_the_new_leader():
    fake = FakePatroni()
    h = FakeHistory()
    with fake_api(fake) as url:
        with Switchover(PatroniAPI(url), candidate="patroni-3", wait=10, history=h) as f:
            assert f.old_leader == "patroni-1" and f.new_leader == "patroni-3"
    assert h.actions() == ["inject", "heal"] and "now patroni-3" in h.marks[1][2]


class FakeToxiproxy:
    def __init__(self) -> None:
        self.proxy = {"name": "pg", "listen": "127.0.0.1:25432", "upstream": "x:5432", "enabled": True, "toxics": []}

    def __call__(self, method, path, body):
        p = self.proxy
        if (method, path) == ("GET", "/proxies"):
            return 200, {"pg": p}
        if (method, path) == ("POST", "/proxies/pg/toxics"):
            p["toxics"].append(body)
            return 200, body
        if method == "DELETE" and path.startswith("/proxies/pg/toxics/"):
            name = path.rsplit("/", 1)[1]
            if not any(t["name"] == name for t in p["toxics"]):
                return 404, {"error": "toxic not found"}
            p["toxics"] = [t for t in p["toxics"] if t["name"] != name]
            return 204, None
        if (method, path) == ("POST", "/proxies/pg"):
            p["enabled"] = body["enabled"]
            return 200, p
        if (method, path) == ("POST", "/reset"):
            p["toxics"], p["enabled"] = [], True
            return 204, None
        return 404, {"error": "not found"}


def test_toxic_and_disabled_proxy_heal_and_reaper_resets_toxiproxy():
    from toxiproxy.api import APIConsumer

    saved = (APIConsumer.host, APIConsumer.port)
    fake = FakeToxiproxy()
    try:
        with fake_api(fake) as url:
            with Toxic("pg", "latency", {"latency": 500}, api=url) as t:
                assert [x["name"] for x in fake.proxy["toxics"]] == [t.toxic_name]
                assert fake.proxy["toxics"][0]["attributes"] == {"latency": 500}
                t.heal()  # removing twice: "not found" is fine
            assert fake.proxy["toxics"] == []
            with ProxyDisabled("pg", api=url):
                assert fake.proxy["enabled"] is False
            assert fake.proxy["enabled"] is True
            with pytest.raises(FaultError, match="no proxy 'nope'"):
                with Toxic("nope", "latency", {"latency": 1}, api=url):
                    pass
            fake.proxy["toxics"].append({"name": "left", "type": "latency"})
            assert heal._reap_toxiproxy(url) == ["removed toxic left from proxy pg"]
            assert heal._reap_toxiproxy(url) == []
    finally:
        APIConsumer.host, APIConsumer.port = saved


# ------------------------------------------------------------------------------------------- ownership
def test_an_image_never_makes_a_container_ours(tmp_path):
    """A container inherits its image's labels: one started from an image that carries our label (as this project's
    images did, and as anything built FROM one of them then did) is not ours; one we label at creation is."""
    from topology.ownership import creation_labels, is_ours, managed_containers

    # a label of its own makes it this test's image (the same two lines elsewhere, e.g. CI's planted user image, would
    # be the same cached image, and removing it would hit that one's children)
    token = os.urandom(4).hex()
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nLABEL {MANAGED_LABEL}=true io.dpg-chaos.test={token}\n")
    image, _ = CLIENT.images.build(path=str(tmp_path), tag="dpg-testbed-inherits:latest", rm=True)
    theirs = CLIENT.containers.create(image.id, ["sleep", "30"], name=PREFIX + "theirs")
    ours = CLIENT.containers.create(BASE_IMAGE, ["sleep", "30"], name=PREFIX + "ours", labels=creation_labels())
    try:
        assert theirs.labels.get(MANAGED_LABEL) == "true"  # inherited: the label alone would say "ours"
        assert not is_ours(CLIENT, theirs)
        assert is_ours(CLIENT, ours)
        found = {c.name for c in managed_containers(CLIENT)}
        assert PREFIX + "ours" in found and PREFIX + "theirs" not in found
    finally:
        for c in (theirs, ours):
            c.remove(force=True)
        CLIENT.images.remove("dpg-testbed-inherits:latest")


# ------------------------------------------------------------------------------------------- host faults
HOST_NET, HOST_SUBNET = "dpg-testbed-hosts", "172.31.50.0/24"


@pytest.fixture(scope="module")
def host_bed(tmp_path_factory):
    """Two Docker-in-Docker hosts of ours, a container on the first, and an inventory (managed_by multihost) naming
    them: what a host fault needs, nothing of the DPG cluster."""
    from topology import hosts, images
    from topology.ownership import creation_labels

    try:
        CLIENT.images.get(hosts.NODE_IMAGE)
    except ImageNotFound:
        images.build(["node"])
    nodes = []
    try:
        for i in (1, 2):
            nodes.append(hosts.start_node(CLIENT, f"{PREFIX}host-{i}", api_port=24770 + i, network=HOST_NET,
                                          subnet=HOST_SUBNET, ip=f"172.31.50.{10 + i}", stack="testbed"))  # fmt: skip
        hosts.load_images(nodes[0], [BASE_IMAGE])
        for inner in ("inner", "inner-etcd"):  # an inventory names one container per member
            nodes[0].client().containers.run(BASE_IMAGE, ["sleep", "infinity"], name=f"{PREFIX}{inner}", detach=True,
                                             labels=creation_labels("testbed"))  # fmt: skip
        fake = {"container": f"{PREFIX}inner", "engine": "h1", "api": "http://127.0.0.1:9", "postgres": "127.0.0.1:9"}
        inv = {
            "version": 1, "name": "host-testbed", "managed_by": "dpg-chaos-multihost", "faults": "allowed",
            "engines": {f"h{n}": {"url": node.url} for n, node in enumerate(nodes, 1)},
            "hosts": {f"h{n}": {"container": node.name, "address": node.ip} for n, node in enumerate(nodes, 1)},
            "patroni": {"members": {"p1": fake}},
            "etcd": {"members": {"e1": {"container": f"{PREFIX}inner-etcd", "engine": "h1", "client_url": "http://127.0.0.1:9"}}},
            "endpoints": {"haproxy_rw": "127.0.0.1:9"},
        }  # fmt: skip
        path = tmp_path_factory.mktemp("hosts") / "inventory.yml"
        path.write_text(yaml.safe_dump(inv))
        yield {"nodes": nodes, "inventory": path}
    finally:
        hosts.remove_nodes(CLIENT, stack="testbed")
        for n in CLIENT.networks.list(names=[HOST_NET]):
            n.remove()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_host_crash_and_partition_leaves_every_host_running_and_no_rule(host_bed, sig):
    victim = Path(__file__).with_name("_interrupt_victim_hosts.py")
    env = {**os.environ, "DPG_TARGET": str(host_bed["inventory"])}
    proc = subprocess.Popen([sys.executable, str(victim)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    nodes = host_bed["nodes"]
    try:
        ready, deadline = "", time.monotonic() + 60
        while "READY" not in ready and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 0.5)[0]:
                ready += proc.stdout.readline()
            if proc.poll() is not None:
                break
        assert "READY" in ready, f"victim never got ready: {proc.stderr.read() if proc.poll() is not None else ''}"
        assert CLIENT.containers.get(nodes[0].name).status == "exited"  # the crash really happened
        assert tagged_rules(CLIENT.containers.get(nodes[1].name)), "the isolation left no rule to heal"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -sig, err
    for node in nodes:
        c = CLIENT.containers.get(node.name)
        assert c.status == "running", f"{node.name} is {c.status} after the heal: {err}"
        assert tagged_rules(c) == [], err
    assert nodes[0].client().containers.get(f"{PREFIX}inner").status == "running", "the reboot did not bring it back"
