"""pytest wiring: session fixtures that start only the stacks the selected tests need, safe under xdist,
an autouse fixture that heals every fault after each test, and Allure environment/categories files.

    --keep-topology  (or DPG_KEEP_TOPOLOGY=1)  leave what this run started running afterwards
    stacks that were already running and healthy before the run are reused and never torn down.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from filelock import FileLock

from topology import health, images, lifecycle
from topology.errors import TopologyError
from topology.stacks import resolve

pytest_plugins = ["reports.pytest_allure", "topology.pytest_guard"]


def pytest_configure(config):
    """Run the harness (probes, watchers, checkers) below the cluster's priority.

    On this 2-core machine the probes share the CPU with the cluster they measure, and with cgroup v1 every
    thread outside Docker weighs as much as all containers together. A starved primary or candidate makes a
    failover slower than the cluster is; a niced probe can only report a gap as long or longer, never shorter.
    DPG_HARNESS_NICE=0 keeps the default priority. Threads started later (the probes) inherit it."""
    from chaos.probes import retry_cap_from_env
    from chaos.slo import member_probe_timeout_ms
    from topology.errors import TopologyError
    try:
        retry_cap_from_env()
        member_probe_timeout_ms()       # bad harness settings: one line at start, not one failure per test
    except TopologyError as exc:
        raise pytest.UsageError(str(exc)) from None
    raw = os.environ.get("DPG_HARNESS_NICE", "10")
    try:
        increment = int(raw)
    except ValueError:
        raise pytest.UsageError(f"DPG_HARNESS_NICE={raw!r} is not an integer") from None
    if increment > 0 and os.getpriority(os.PRIO_PROCESS, 0) < increment:
        os.nice(increment - os.getpriority(os.PRIO_PROCESS, 0))


def pytest_addoption(parser):
    parser.addoption("--keep-topology", action="store_true", default=os.environ.get("DPG_KEEP_TOPOLOGY") == "1",
                     help="do not tear down the stacks this run started")


class Topology:
    """Starts stacks on demand, once across xdist workers (FileLock), and tears down what it started."""

    def __init__(self, shared_dir: Path, keep: bool):
        self.lock = FileLock(str(shared_dir / "dpg-topology.lock"))
        self.state_file = shared_dir / "dpg-topology.json"
        self.keep = keep
        self._client = None

    @property
    def client(self):
        if self._client is None:
            try:
                self._client = images.docker_client()
            except TopologyError as err:
                pytest.exit(f"topology: {err}", returncode=2)
        return self._client

    def _state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {"users": 0, "started": []}

    def _save(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state))

    def join(self) -> None:
        with self.lock:
            state = self._state()
            state["users"] += 1
            self._save(state)

    def ensure(self, names: tuple[str, ...]) -> dict[str, str]:
        """Make the stacks (and what they need) healthy; returns {stack: skip reason} for absent images."""
        with self.lock:
            state = self._state()
            running = set(health.running_stacks(self.client))
            try:
                todo = [s.name for s in resolve(list(names))]
                skipped = {n: r for n in todo if (r := lifecycle.skip_reason(self.client, n))}
                missing = [n for n in todo if n not in running and n not in skipped]
                if missing:
                    lifecycle.up(missing)
                    state["started"] = sorted(set(state["started"]) | set(missing))
                    self._save(state)
                health.wait_healthy(self.client, [n for n in todo if n not in skipped])
            except TopologyError as err:
                pytest.fail(f"topology: {err}", pytrace=False)
            return skipped

    def leave(self) -> None:
        with self.lock:
            state = self._state()
            state["users"] -= 1
            self._save(state)
            if state["users"] > 0 or self.keep or not state["started"]:
                return
            lifecycle.down_started(state["started"])
            self.state_file.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def topology(request, tmp_path_factory):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    shared = tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()
    topo = Topology(shared, keep=request.config.getoption("--keep-topology"))
    topo.join()
    yield topo
    topo.leave()


def _stack_fixture(*names: str):
    @pytest.fixture(scope="session")
    def fixture(topology):
        skipped = topology.ensure(names)
        wanted = [n for n in names if n in skipped]
        if wanted:
            pytest.skip(skipped[wanted[0]])
        return topology.client
    return fixture


patroni_stack = _stack_fixture("patroni")
write_paths_stacks = _stack_fixture("patroni", "pgbouncer", "traefik")
vector_stack = _stack_fixture("vector")
redis_stack = _stack_fixture("redis")
toxiproxy_stack = _stack_fixture("toxiproxy")
monitoring_stack = _stack_fixture("monitoring")
citus_stack = _stack_fixture("citus")
grafana_stack = _stack_fixture("grafana")


@pytest.fixture(autouse=True)
def heal_everything():
    """Jepsen's teardown!: whatever a test left injected is healed before the next one starts."""
    yield
    from chaos.faults import heal_all
    heal_all(reason="test teardown", raise_errors=False)
